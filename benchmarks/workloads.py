"""The workloads W1-W9, each run against one peer (or the ZeroMQ floor).

A workload reports each figure through ``emit`` as soon as it is measured,
so a workload that later hangs or crashes still leaves what it measured.
Figure keys are ``wN.<what>``; values are plain numbers.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil
import tasks
from idle_cpu import run_times
from peers import Peer, make_peer, wait_gone
from sim_scale import w8_scale_sim

Emit = Callable[[str, Any], None]
W5_MAX_MINUTES = 6.0
W6_PAIRS = 5
W9_RESERVE_GB = 4.0  # of the machine's available memory, left to everyone else during W9
W9_MARGIN = 1.25  # on the memory a probe predicts
W9_ENGINE_TIMEOUT = 300.0
W9_FIGURES = ("start_s", "registered_s", "cpu_s", "uss_MB", "pss_MB", "rss_MB")


@dataclass
class Config:
    """Sizes of every workload; :meth:`quick` is the few-seconds version."""

    engines: int = 2
    w1_calls: int = 1000
    w2_engines: list[int] = field(default_factory=lambda: [2, 8])
    w2_tasks: int = 20_000
    w2_peer_tasks: int = 5_000  # ipyparallel and dask: same per-task cost, fewer tasks
    w3_bytes: int = 100_000_000
    w3_repeats: int = 3
    w4_engines: int = 4
    w4_repeats: int = 3
    w5_tasks: list[int] = field(default_factory=lambda: [50_000, 1_000_000])
    w5_burst: int = 20_000
    w5_chunk: int = 10  # tasks per message after the first count (one per message up to it)
    w5_peer_probe: int = 1_000
    w5_idle_s: float = 10.0  # seconds over which an idle cluster's CPU is read
    w6_tasks: int = 32
    w6_task_s: float = 0.05
    w7_engines: int = 256
    w8_engines: list[int] = field(default_factory=lambda: [1_000, 5_000, 10_000])
    w8_tasks: int = 100_000
    w8_survive_s: float = 120.0
    w8_heartbeat_s: float | None = None  # None: the controller's default (1 s)
    w9_engines: list[int] = field(default_factory=lambda: [256, 1_000])
    w9_peer_engines: int = 256  # the peers start this many only

    @classmethod
    def quick(cls) -> Config:
        """Tiny sizes: checks that the code runs, measures nothing worth quoting."""
        return cls(
            w1_calls=50,
            w2_engines=[2],
            w2_tasks=200,
            w2_peer_tasks=200,
            w3_bytes=1_000_000,
            w3_repeats=1,
            w4_engines=2,
            w4_repeats=1,
            w5_tasks=[500, 1_000],
            w5_burst=500,
            w5_peer_probe=100,
            w5_idle_s=0.5,
            w6_tasks=4,
            w6_task_s=0.01,
            w7_engines=4,
            w8_engines=[20],
            w8_tasks=200,
            w8_survive_s=2.0,
            w9_engines=[4],
            w9_peer_engines=4,
        )

    def to_dict(self) -> dict[str, Any]:
        """The sizes, for the results file."""
        return asdict(self)


def _rss_mb(pids: list[int]) -> float:
    """Total resident memory of processes, in MB (10^6 bytes)."""
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e6


def _run_ns(pid: int) -> int:
    """Nanoseconds every thread of a process has run (the scheduler's count, not the 10 ms
    ticks ``psutil`` reads; Linux)."""
    return sum(ns for ns, _ in run_times(pid).values())


def _started(name: str, n: int, **options: Any) -> Peer:
    peer = make_peer(name, **options)
    peer.start(n)
    return peer


def w1_latency(name: str, cfg: Config, emit: Emit) -> None:
    """No-op round trips one at a time: median and p99 in µs, direct and load-balanced."""
    peer = _started(name, cfg.engines)
    try:
        for mode in ("direct", "lb"):
            for _ in range(min(100, cfg.w1_calls)):
                peer.call(mode)
            lat = []
            for _ in range(cfg.w1_calls):
                t = time.perf_counter()
                peer.call(mode)
                lat.append(time.perf_counter() - t)
            lat.sort()
            emit(f"w1.{mode}.median_us", statistics.median(lat) * 1e6)
            emit(f"w1.{mode}.p99_us", lat[int(len(lat) * 0.99)] * 1e6)
    finally:
        peer.stop()


def w2_throughput(name: str, cfg: Config, emit: Emit) -> None:
    """Tasks per second of many no-op tasks, as one ``map`` and as ``apply_async`` in a loop."""
    n_tasks = cfg.w2_tasks if name == "par" else cfg.w2_peer_tasks
    emit("w2.tasks", n_tasks)
    for n in cfg.w2_engines:
        peer = _started(name, n)
        try:
            peer.map_noop(min(200, n_tasks))
            for mode, run in (("map", peer.map_noop), ("apply", peer.apply_loop_noop)):
                t = time.perf_counter()
                run(n_tasks)
                emit(f"w2.{mode}.{n}", n_tasks / (time.perf_counter() - t))
        finally:
            peer.stop()


def w3_push_pull(name: str, cfg: Config, emit: Emit) -> None:
    """MB/s of pushing one NumPy array to every engine and pulling every copy back."""
    import numpy as np

    arr = np.ones(cfg.w3_bytes // 8)
    peer = _started(name, cfg.engines)
    try:
        push, pull = [], []
        for _ in range(cfg.w3_repeats):
            t = time.perf_counter()
            peer.push(arr)
            push.append(time.perf_counter() - t)
            t = time.perf_counter()
            back = peer.pull()
            pull.append(time.perf_counter() - t)
            if len(back) != cfg.engines or any(b.nbytes != arr.nbytes for b in back):
                raise RuntimeError(f"pull returned {len(back)} arrays, not {cfg.engines} copies")
            del back
        total = arr.nbytes * cfg.engines / 1e6
        emit("w3.push_MBps", total / statistics.median(push))
        emit("w3.pull_MBps", total / statistics.median(pull))
    finally:
        peer.stop()


def w4_start_stop(name: str, cfg: Config, emit: Emit) -> None:
    """Seconds from nothing to every engine answering a no-op, and back to no process left."""
    starts, stops = [], []
    for _ in range(cfg.w4_repeats):
        t = time.perf_counter()
        peer = _started(name, cfg.w4_engines)
        starts.append(time.perf_counter() - t)
        pids = peer.pids()
        t = time.perf_counter()
        peer.stop()
        if not wait_gone(pids):
            raise RuntimeError("processes left running 30 s after stop")
        stops.append(time.perf_counter() - t)
    emit("w4.start_s", statistics.median(starts))
    emit("w4.stop_s", statistics.median(stops))


def w5_memory(name: str, cfg: Config, emit: Emit) -> None:
    """Idle engine and controller RSS (MB) and CPU (ms a second), and controller RSS
    after many tasks.

    Up to the first count each task is its own message; past it, tasks go
    ``w5_chunk`` to a message (1,000,000 tasks: 145,000 messages), which fits
    the time budget and still keeps the controller's record store full. A
    peer too slow to run the largest count within ``W5_MAX_MINUTES`` (judged
    from a short probe) reports n/a for the task counts instead.
    """
    options = {"subprocess_scheduler": True} if name == "dask" else {}
    peer = _started(name, cfg.engines, **options)
    try:
        peer.map_noop(100)
        time.sleep(1.0)
        engines = peer.engine_pids()
        emit("w5.engine_idle_MB", statistics.median(_rss_mb([p]) for p in engines))
        controller = peer.controller_pids()
        emit("w5.controller_idle_MB", _rss_mb(controller))
        before = {pid: _run_ns(pid) for pid in [*engines, *controller]}
        time.sleep(cfg.w5_idle_s)
        ms = {pid: (_run_ns(pid) - ns) / cfg.w5_idle_s / 1e6 for pid, ns in before.items()}
        emit("w5.engine_idle_cpu_ms", statistics.median(ms[pid] for pid in engines))
        emit("w5.controller_idle_cpu_ms", sum(ms[pid] for pid in controller))
        t = time.perf_counter()
        peer.map_noop(cfg.w5_peer_probe)
        rate = cfg.w5_peer_probe / (time.perf_counter() - t)
        minutes = max(cfg.w5_tasks) / rate / 60
        if name != "par" and minutes > W5_MAX_MINUTES:
            most = f"{max(cfg.w5_tasks):,}"
            reason = (
                f"not run: {rate:,.0f} tasks/s here, {most} tasks would take {minutes:,.0f} min"
            )
            for n in cfg.w5_tasks:
                emit(f"w5.controller_{n}_MB", {"na": reason})
            return
        done = 0
        for target in cfg.w5_tasks:
            chunk = 1 if done == 0 else cfg.w5_chunk
            while done < target:
                burst = min(cfg.w5_burst, target - done)
                peer.map_noop(burst, chunk)
                done += burst
            time.sleep(1.0)
            emit(f"w5.controller_{target}_MB", _rss_mb(controller))
    finally:
        peer.stop()


def w6_efficiency(name: str, cfg: Config, emit: Emit) -> None:
    """Parallel efficiency (%) of a CPU-bound map: serial time / (engines x parallel time).

    Serial and parallel runs alternate ``W6_PAIRS`` times and the best pair
    counts, which damps what other load on a shared machine does to one pair.
    """
    n_iter = 10_000
    while True:
        t = time.perf_counter()
        tasks.burn(n_iter)
        dt = time.perf_counter() - t
        if dt > 0.2 * cfg.w6_task_s:
            break
        n_iter *= 2
    n_iter = int(n_iter * cfg.w6_task_s / dt)
    peer = _started(name, cfg.engines)
    try:
        peer.map_burn(n_iter, cfg.engines)
        best = 0.0
        for _ in range(W6_PAIRS):
            t = time.perf_counter()
            for _ in range(cfg.w6_tasks):
                tasks.burn(n_iter)
            serial = time.perf_counter() - t
            t = time.perf_counter()
            peer.map_burn(n_iter, cfg.w6_tasks)
            parallel = time.perf_counter() - t
            best = max(best, serial / (cfg.engines * parallel))
        emit("w6.efficiency_pct", 100 * best)
    finally:
        peer.stop()


def w7_scale(name: str, cfg: Config, emit: Emit) -> None:
    """Seconds for many engines to register and all answer one broadcast ``execute``."""
    t0 = time.perf_counter()
    peer = _started(name, cfg.w7_engines)
    try:
        registered = time.perf_counter()
        emit("w7.register_s", registered - t0)
        answered = peer.execute_all("w7 = 1")
        now = time.perf_counter()
        emit("w7.execute_s", now - registered)
        emit("w7.answering", answered)
        emit("w7.total_s", now - t0)
    finally:
        peer.stop()


def _memory_mb(pids: list[int]) -> dict[str, float]:
    """Sums over processes of unique (USS), proportional (PSS) and resident (RSS) memory, MB."""
    total = {"uss": 0, "pss": 0, "rss": 0}
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except psutil.NoSuchProcess:
            continue
        for key in total:
            total[key] += getattr(info, key, 0)
    return {key: value / 1e6 for key, value in total.items()}


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds (user and system) the processes have used."""
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _engine_side(peer: Peer) -> list[int]:
    """The engines and what started them (par's fork server, nannies), not the controller."""
    controller = set(peer.controller_pids())
    return [pid for pid in peer.pids() if pid not in controller]


def _uss_per_engine(name: str) -> float:
    """MB of unique memory (USS) one engine of a peer takes, from a probe of two."""
    peer = _started(name, 2)
    try:
        return _memory_mb(peer.engine_pids())["uss"] / 2
    finally:
        peer.stop()


def _w9_room(name: str, n: int, each: float) -> str | None:
    """Why ``n`` engines of ``each`` MB would not fit in the machine's memory now, or None."""
    need_gb = n * each * W9_MARGIN / 1e3
    room_gb = psutil.virtual_memory().available / 1e9 - W9_RESERVE_GB
    if need_gb <= room_gb:
        return None
    return (
        f"not run: {n:,} {name} engines need ~{need_gb:,.0f} GB ({each:,.0f} MB USS each), "
        f"{room_gb:,.0f} GB is free beyond {W9_RESERVE_GB:g} GB left to others"
    )


def w9_real_start(name: str, cfg: Config, emit: Emit) -> None:
    """Seconds from nothing to N real engines registered and all answering one
    ``apply_sync(os.getpid)``, and what they cost: memory summed over the engine processes
    (and par's fork server): USS (unique to each, what forked engines do not share), PSS and
    RSS, and the CPU seconds of those and the controller. The peers start
    ``w9_peer_engines`` only; a count that would not fit in memory is not run."""
    counts = cfg.w9_engines if name == "par" else [cfg.w9_peer_engines]
    for n in cfg.w9_engines:
        if n not in counts:
            for what in W9_FIGURES:
                emit(f"w9.{what}.{n}", {"na": f"not run: the peers run W9 at {counts[0]} engines"})
    each = _uss_per_engine(name)
    for n in counts:
        reason = _w9_room(name, n, each)
        if reason is not None:
            for what in W9_FIGURES:
                emit(f"w9.{what}.{n}", {"na": reason})
            continue
        # par's own estimate of what fits is rougher than the probe's: the probe decides
        options = {"engine_timeout": W9_ENGINE_TIMEOUT, "force": True} if name == "par" else {}
        peer = make_peer(name, **options)
        t0 = time.perf_counter()
        peer.start(n)
        answered = time.perf_counter()
        try:
            emit(f"w9.start_s.{n}", answered - t0)
            emit(f"w9.registered_s.{n}", peer.registered_at - t0)
            emit(f"w9.cpu_s.{n}", _cpu_s(peer.pids()))
            for key, value in _memory_mb(_engine_side(peer)).items():
                emit(f"w9.{key}_MB.{n}", value)
            pids = peer.pids()
        finally:
            peer.stop()
        if not wait_gone(pids, timeout=120):
            raise RuntimeError(f"processes of {n} engines left running 120 s after stop")


def floor_w1(name: str, cfg: Config, emit: Emit) -> None:
    """The bare ZeroMQ broker: latency and pipelined round trips per second."""
    import zmq_floor

    out = zmq_floor.broker(calls=cfg.w1_calls * 5, tasks=cfg.w2_tasks * 2)
    for mode in ("direct", "lb"):
        emit(f"w1.{mode}.median_us", out["median_us"])
        emit(f"w1.{mode}.p99_us", out["p99_us"])
    for n in cfg.w2_engines:
        for mode in ("map", "apply"):
            emit(f"w2.{mode}.{n}", out["tasks_per_s"])


def floor_w3(name: str, cfg: Config, emit: Emit) -> None:
    """A raw ZeroMQ send of the W3 bytes to each engine-like process, and back."""
    import zmq_floor

    out = zmq_floor.send(cfg.w3_bytes, cfg.engines, cfg.w3_repeats)
    emit("w3.push_MBps", out["push_MBps"])
    emit("w3.pull_MBps", out["pull_MBps"])


WORKLOADS: dict[str, Callable[[str, Config, Emit], None]] = {
    "w1": w1_latency,
    "w2": w2_throughput,
    "w3": w3_push_pull,
    "w4": w4_start_stop,
    "w5": w5_memory,
    "w6": w6_efficiency,
    "w7": w7_scale,
    "w8": w8_scale_sim,
    "w9": w9_real_start,
}
PAR_ONLY = {"w8": "not run: simulated engines speak par's protocol only"}
FLOORS: dict[str, Callable[[str, Config, Emit], None]] = {"w1": floor_w1, "w3": floor_w3}
