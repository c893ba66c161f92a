"""W8: one real controller under thousands of simulated engines (``par.sim``).

For each count a fresh controller (``par controller``, unchanged) gets that many
simulated engines, spread over several processes (see :mod:`par.sim.driver`),
and a client measures: seconds from the first registration until it sees all
of them up, seconds until ``rc[:].execute("a = 1")`` is answered by all, the
rate of a load-balanced map of no-op tasks and the controller's CPU per task,
the controller's RSS after the map, and how often it declared an engine lost
(none is killed, so every one is false; a simulated engine told so registers
again, as a real one does, and may be lost again), beside the most a simulated
heartbeat went out late (the harness kept time if that is well under the
controller's 6 s timeout). Counts run largest first; the largest that
registers in full also sits through ``w8_survive_s`` seconds of idle
heartbeats (none when it is 0), with the controller's CPU meanwhile (a share of one core). A
count that stops registering (no progress for ``STALL_S``) is reported n/a
with the open files of the controller's busiest process, one an engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psutil
from tasks import noop

if TYPE_CHECKING:
    from workloads import Config

Emit = Callable[[str, Any], None]
REGISTER_S = 120.0  # the longest a count may take to register
STALL_S = 15.0  # a count whose registrations stop for this long has failed
MAP_S = 150.0  # the longest a map may take
PER_COUNT = ("register_s", "register_cpu_s", "execute_s", "map", "map_cpu_us")
PER_COUNT += ("controller_MB", "lost", "late_s")


class Lost:
    """Engines the controller declared lost, as the client heard."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reasons: list[str] = []

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "engine_lost":
            with self.lock:
                self.reasons.append(str(data.get("reason")))

    def count(self) -> int:
        with self.lock:
            return len(self.reasons)


def cpu(proc: psutil.Process) -> float:
    """CPU seconds of the controller and its relays (the child processes that hold
    engines' control and direct connections)."""
    return sum(t.user + t.system for t in (p.cpu_times() for p in (proc, *proc.children())))


def rss(proc: psutil.Process) -> float:
    """MB resident in the controller and its relays."""
    return sum(p.memory_info().rss for p in (proc, *proc.children())) / 1e6


def wait_up(rc: Any, n: int) -> int:
    """Wait until the client sees ``n`` engines, or registrations stall; how many it sees."""
    deadline = time.monotonic() + REGISTER_S
    seen, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            rc.wait_for_engines(n, timeout=0.5)
            return n
        except TimeoutError:
            pass
        now = len(rc.ids)
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > STALL_S:
            break
    return len(rc.ids)


@contextmanager
def controller(heartbeat: float | None = None) -> Iterator[tuple[Any, str, psutil.Process]]:
    """A fresh controller without engines: a client of it, its connection file and its
    process; all stopped after. ``heartbeat`` (seconds) replaces the controller's, with
    the timeout six of them as by default."""
    import par
    from par import paths

    args = [] if heartbeat is None else ["--heartbeat", f"{heartbeat:g}"]
    args += [] if heartbeat is None else ["--heartbeat-timeout", f"{6 * heartbeat:g}"]
    cluster = par.Cluster(n=0, controller_args=args)
    cluster.start_controller_sync()
    try:
        rc = cluster.connect_client_sync()
        try:
            process = psutil.Process(int(rc.status()["pid"]))
            yield rc, str(paths.connection_file(cluster.cluster_id)), process
        finally:
            rc.close()
    finally:
        cluster.stop_cluster_sync()


def run_count(n: int, cfg: Config, emit: Emit, survive: bool) -> bool:
    """Measure one count of simulated engines; whether all of them registered."""
    from par.sim import SimEngines

    with controller(cfg.w8_heartbeat_s) as (rc, connection_file, ctl):
        lost = Lost()
        rc.subscribe_events(lost)
        with SimEngines(connection_file, n) as sim:
            cpu0 = cpu(ctl)
            up = wait_up(rc, n)
            assert sim.started_at is not None
            took = time.time() - sim.started_at
            if up < n:
                files = max(p.num_fds() for p in (ctl, *ctl.children()))
                limit = ctl.rlimit(psutil.RLIMIT_NOFILE)[0]
                reason = (
                    f"{up:,} of {n:,} registered in {took:.0f} s; the controller's busiest "
                    f"process holds {files:,} open files, its limit {limit:,} (1 an engine)"
                )
                for what in PER_COUNT:
                    emit(f"w8.{what}.{n}", {"na": reason})
                return False
            emit(f"w8.register_s.{n}", took)
            emit(f"w8.register_cpu_s.{n}", cpu(ctl) - cpu0)
            if survive and cfg.w8_survive_s > 0:
                before, idle0 = lost.count(), cpu(ctl)
                time.sleep(cfg.w8_survive_s)
                emit("w8.survive_engines", n)
                emit("w8.survive_cpu", (cpu(ctl) - idle0) / cfg.w8_survive_s)
                emit("w8.survive_lost", lost.count() - before)
                emit("w8.survive_late_s", sim.heartbeats_late())
            _execute(rc, n, emit)
            _map(rc, ctl, n, cfg.w8_tasks, emit)
            emit(f"w8.controller_MB.{n}", rss(ctl))
            emit(f"w8.lost.{n}", lost.count())
            emit(f"w8.late_s.{n}", sim.heartbeats_late())
            return True


def _execute(rc: Any, n: int, emit: Emit) -> None:
    t = time.perf_counter()
    try:
        rc[:].execute("a = 1", block=False).get(timeout=MAP_S)
        emit(f"w8.execute_s.{n}", time.perf_counter() - t)
    except Exception as exc:
        emit(f"w8.execute_s.{n}", {"na": f"{type(exc).__name__}: {str(exc)[:120]}"})


def _map(rc: Any, ctl: psutil.Process, n: int, tasks: int, emit: Emit) -> None:
    """A load-balanced map of no-op tasks, one a message: its rate, or why none."""
    cpu0 = cpu(ctl)
    t = time.perf_counter()
    ar = rc.load_balanced_view().map_async(noop, range(tasks), chunksize=1)
    ar.wait(MAP_S)
    took = time.perf_counter() - t
    done = ar.progress
    per_task = (cpu(ctl) - cpu0) / done * 1e6 if done else {"na": "no task done"}
    emit(f"w8.map_cpu_us.{n}", per_task)
    rate = f"{done / took:,.0f} tasks/s"
    if not ar.ready():
        emit(f"w8.map.{n}", {"na": f"not done in {MAP_S:.0f} s: {done:,} of {tasks:,} ({rate})"})
    elif not ar.successful():
        failed = sum(1 for md in ar.metadata if md["status"] != "ok")
        emit(f"w8.map.{n}", {"na": f"{failed:,} of {tasks:,} tasks failed ({rate})"})
    else:
        emit(f"w8.map.{n}", tasks / took)


def w8_scale_sim(name: str, cfg: Config, emit: Emit) -> None:
    """Simulated engines at each count of ``w8_engines`` (par only: they speak its protocol)."""
    if name != "par":
        raise ValueError("W8 runs par only: simulated engines speak par's protocol")
    survived = False
    for n in sorted(cfg.w8_engines, reverse=True):
        emitted: set[str] = set()

        def tracked(key: str, value: Any, emitted: set[str] = emitted) -> None:
            emitted.add(key)
            emit(key, value)

        try:
            registered = run_count(n, cfg, tracked, survive=not survived)
        except Exception as exc:  # the count's other figures say why; the next count runs
            registered = False
            reason = {"na": f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"}
            for what in PER_COUNT:
                if f"w8.{what}.{n}" not in emitted:
                    emit(f"w8.{what}.{n}", reason)
        survived = survived or registered or "w8.survive_engines" in emitted
