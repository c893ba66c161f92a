"""Simulated engines (par.sim) against a real controller: a few hundred register, answer
direct, broadcast and load-balanced work, survive heartbeats, and are lost when killed."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import par
import psutil
import pytest
import zmq
from par import connection, paths
from par.sim import SimEngines
from par.sim.swarm import SimEngine, Swarm

from ..conftest import slowest_beats

N = 300


class Events:
    """Cluster events a client saw, by kind."""

    def __init__(self, rc: par.Client) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        rc.subscribe_events(self._on)

    def _on(self, kind: str, data: dict[str, Any]) -> None:
        with self.lock:
            self.seen.append((kind, data))

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind seen so far."""
        with self.lock:
            return [d for k, d in self.seen if k == kind]


@pytest.fixture(scope="module")
def controller() -> Iterator[tuple[par.Cluster, par.Client]]:
    """A real controller (no real engines) and a client of it."""
    cluster = par.Cluster(n=0)
    cluster.start_controller_sync()
    rc = cluster.connect_client_sync()
    try:
        yield cluster, rc
    finally:
        rc.close()
        cluster.stop_cluster_sync()


@pytest.fixture(scope="module")
def swarm(controller: tuple[par.Cluster, par.Client]) -> Iterator[SimEngines]:
    """N simulated engines of the module's controller, in two processes."""
    cluster, rc = controller
    with SimEngines(paths.connection_file(cluster.cluster_id), N, processes=2) as sim:
        rc.wait_for_engines(N, timeout=90)
        yield sim


@pytest.fixture
def rc(controller: tuple[par.Cluster, par.Client], swarm: SimEngines) -> par.Client:
    return controller[1]


def wait_until(done: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_few_hundred_register_with_the_real_controller(rc: par.Client, swarm: SimEngines) -> None:
    assert rc.ids == list(range(N))
    assert swarm.registered() == rc.ids
    pids = {info["pid"] for info in rc.engines().values()}
    assert pids == set(swarm.pids())  # each process registers its engines under its pid
    assert all(info["info"]["simulated"] for info in rc.engines().values())


def test_execute_on_all_is_answered_by_every_engine(rc: par.Client) -> None:
    ar = rc[:].execute("a = 1", block=False)
    replies = ar.get(timeout=60)
    assert [r["engine_id"] for r in replies] == rc.ids
    assert {r.execution_count for r in replies} == {None}  # silent: not counted
    counted = rc[:2].execute("a", silent=False, block=True)
    assert [r.execution_count for r in counted] == [1, 1]


def test_direct_and_broadcast_requests_are_answered(rc: par.Client) -> None:
    assert rc[7].apply_sync(max, 1, 2) is None  # no code runs: every task returns None
    bview = rc.broadcast_view(is_coalescing=True)
    assert bview.apply_sync(max, 1, 2) == [None] * N


def test_a_load_balanced_map_runs_across_all_of_them(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ar = lv.map_async(abs, range(3000), chunksize=1)
    assert ar.get(timeout=120) == [None] * 3000  # a chunk's result: a None for each call
    assert {md["engine_id"] for md in ar.metadata} == set(rc.ids)
    assert lv.map_sync(abs, range(100), chunksize=7) == [None] * 100


def test_heartbeats_keep_every_engine_registered(rc: par.Client, swarm: SimEngines) -> None:
    events = Events(rc)
    time.sleep(8)  # longer than the controller's heartbeat timeout (6 s)
    assert events.of("engine_lost") == []
    assert len(rc.ids) == N
    assert swarm.heartbeats_late() < 1.0


def test_a_controller_paused_past_the_heartbeat_timeout_loses_no_engine(
    rc: par.Client, swarm: SimEngines
) -> None:
    """Heartbeats that waited in the controller's socket while it could not read them
    count: an engine is lost for its silence, not for the controller's."""
    events = Events(rc)
    controller = int(rc.status()["pid"])
    os.kill(controller, signal.SIGSTOP)
    try:
        time.sleep(8)  # longer than the heartbeat timeout (6 s)
    finally:
        os.kill(controller, signal.SIGCONT)
    assert rc[:].apply_sync(max, 1, 2) == [None] * N  # the controller has caught up
    time.sleep(2)  # a few liveness checks
    assert events.of("engine_lost") == []
    assert len(rc.ids) == N


def test_a_control_relay_paused_past_the_heartbeat_timeout_loses_no_engine(
    rc: par.Client, swarm: SimEngines
) -> None:
    """The child process that answers heartbeats (the control relay) stopped for longer
    than the heartbeat timeout: the engines' silence meanwhile is its own."""
    events = Events(rc)
    controller = psutil.Process(int(rc.status()["pid"]))
    (relay,) = (p for p in controller.children() if p.cmdline()[-1] == "control")
    relay.suspend()
    try:
        time.sleep(8)  # longer than the heartbeat timeout (6 s)
    finally:
        relay.resume()
    time.sleep(3)  # the relay catches up, then a few liveness checks
    assert events.of("engine_lost") == []
    assert len(rc.ids) == N


def test_killed_engines_are_noticed_as_lost(rc: par.Client, swarm: SimEngines) -> None:
    events = Events(rc)
    killed = swarm.kill(3)
    assert len(killed) == 3
    wait_until(lambda: not set(killed) & set(rc.ids))
    lost = {d["id"]: d["reason"] for d in events.of("engine_lost")}
    assert set(lost) == set(killed)
    assert all("closed its connection" in reason for reason in lost.values())
    assert set(swarm.registered()).isdisjoint(killed)


def test_hung_engines_are_lost_once_their_heartbeats_stop(
    rc: par.Client, swarm: SimEngines
) -> None:
    events = Events(rc)
    hung = swarm.hang(2)
    ar = rc[hung].apply_async(abs, 1)
    with pytest.raises(par.CompositeError) as err:
        ar.get(timeout=30)
    assert {e.ename for e in err.value.elist} == {"EngineError"}
    lost = {d["id"]: d["reason"] for d in events.of("engine_lost")}
    assert set(lost) == set(hung)
    assert all("missed heartbeats" in reason for reason in lost.values())


def test_shutdown_stops_a_simulated_engine(rc: par.Client, swarm: SimEngines) -> None:
    events = Events(rc)
    target = rc.ids[0]
    rc.shutdown(targets=[target], block=True)
    wait_until(lambda: target not in swarm.registered())
    assert target not in rc.ids
    assert [d["id"] for d in events.of("engine_stopped")] == [target]


def test_tasks_take_the_delay_one_after_another() -> None:
    cluster = par.Cluster(n=0)
    cluster.start_controller_sync()
    rc = cluster.connect_client_sync()
    try:
        with SimEngines(paths.connection_file(cluster.cluster_id), 2, delay=0.2):
            rc.wait_for_engines(2, timeout=60)
            ar = rc.load_balanced_view().map_async(abs, range(6), chunksize=1)
            assert ar.get(timeout=60) == [None] * 6
        runs: dict[int, list[tuple[float, float]]] = {}
        for md in ar.metadata:
            took = (md["completed"] - md["started"]).total_seconds()
            assert took == pytest.approx(0.2, abs=1e-3)
            runs.setdefault(md["engine_id"], []).append((md["started"], md["completed"]))
        for spans in runs.values():  # an engine runs its tasks one at a time
            spans.sort()
            assert all(b[0] >= a[1] for a, b in itertools.pairwise(spans))
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def test_bad_input_gets_a_clear_error(controller: tuple[par.Cluster, par.Client]) -> None:
    with pytest.raises(ValueError, match="n must be 1 or more simulated engines, not 0"):
        SimEngines("x.json", 0)
    with pytest.raises(ValueError, match="delay must be 0 or more seconds, not -1"):
        SimEngines("x.json", 2, delay=-1)
    missing = subprocess.run(
        [sys.executable, "-m", "par.sim", "/nonexistent/c.json", "-n", "2", "--timeout", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert missing.stderr.startswith("par.sim: connection file /nonexistent/c.json not found")
    cluster, _ = controller
    connection_file = str(paths.connection_file(cluster.cluster_id))
    asked = subprocess.run(
        [sys.executable, "-m", "par.sim", connection_file, "-n", "1"],
        input="dance\nkill two\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert asked.returncode == 0, asked.stderr
    started, *answers = asked.stdout.splitlines()
    assert '"started"' in started
    assert len(answers) == 2
    assert all("unknown command" in a and "status, kill K, hang K, stop" in a for a in answers)


def test_the_heartbeat_grows_with_the_engine_count_and_every_engine_follows() -> None:
    """Past ``--heartbeats-per-second`` the interval and the timeout grow in step: 300
    engines at 100 beats a second beat every 3 s, and none is lost for it (real engines
    that registered early hear it in their heartbeats' answers: see test_faults.py)."""
    args = ["--heartbeat", "0.5", "--heartbeat-timeout", "3", "--heartbeats-per-second", "100"]
    cluster = par.Cluster(n=0, controller_args=args)
    cluster.start_controller_sync()
    rc = cluster.connect_client_sync()
    try:
        events = Events(rc)
        with SimEngines(paths.connection_file(cluster.cluster_id), N, processes=2) as sim:
            rc.wait_for_engines(N, timeout=90)
            status = rc.status()
            assert (status["heartbeat"], status["heartbeat_timeout"]) == (3.0, 18.0)
            ages = slowest_beats(rc, 8)
            # The harness keeps time while the interval changes under it.
            assert sim.heartbeats_late() < 0.5
        assert len(ages) == N
        # At the base interval no engine's beat would ever be 1.5 s old (nor a batch late).
        assert min(ages.values()) > 1.5
        assert max(ages.values()) < 18
        assert events.of("engine_lost") == []
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def test_a_heartbeat_due_sooner_is_not_held_behind_one_due_later(
    controller: tuple[par.Cluster, par.Client],
) -> None:
    """The interval changes under the harness (it grows; a restored controller's may be
    shorter): a beat scheduled at a shorter interval goes out when due, not after the
    beats scheduled before it at a longer one."""
    cluster, _ = controller
    swarm = Swarm(connection.load(paths.connection_file(cluster.cluster_id)), 2)
    try:
        engines = [
            SimEngine(bytes([i]), swarm.ctx.socket(zmq.DEALER), swarm.session) for i in range(2)
        ]
        by_socket = {e.control: e for e in engines}
        sent: list[SimEngine] = []
        swarm._send = lambda sock, frames: sent.append(by_socket[sock])  # type: ignore[method-assign]
        now = time.monotonic()
        for engine, due in zip(engines, (now + 10, now - 0.01), strict=True):
            engine.state = "up"
            swarm._beat_at(engine, due)
        swarm._timers()
        assert sent == [engines[1]]
        assert swarm.late < 1
    finally:
        swarm.selector.close()
        swarm.ctx.destroy(linger=0)
