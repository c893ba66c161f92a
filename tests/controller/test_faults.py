"""Engines that die, hang, get interrupted, or receive forged and garbage messages."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import par
import pytest
import zmq
from par import protocol

from ..conftest import slowest_beats


def test_sigkilled_engine_turns_its_task_into_engine_error(small_cluster) -> None:
    _, rc = small_cluster
    pid = rc[1].apply_sync(os.getpid)
    ar = rc[1].apply_async(time.sleep, 60)
    time.sleep(0.3)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(par.EngineError) as info:
        ar.get(timeout=10)
    assert time.monotonic() - t0 < 5
    assert f"pid {pid}" in info.value.evalue
    assert rc.ids == [0]
    assert rc[0].apply_sync(lambda: "alive") == "alive"


def sleep_long_on(pid: int) -> int:
    """Sleep a minute on the engine with process id ``pid``, briefly elsewhere."""
    time.sleep(60 if os.getpid() == pid else 0.2)
    return os.getpid()


def test_a_coalesced_broadcast_to_an_engine_that_dies_fails_instead_of_hanging(
    small_cluster,
) -> None:
    """The hub gathers a coalesced broadcast's replies; the controller's own error for a
    dead engine once went straight to the client, so the gathering never completed."""
    _, rc = small_cluster
    victim = rc[1].apply_sync(os.getpid)
    ar = rc.broadcast_view(is_coalescing=True).apply_async(sleep_long_on, victim)
    time.sleep(0.5)
    os.kill(victim, signal.SIGKILL)
    outcomes = ar.get(timeout=15, return_exceptions=True)
    assert outcomes[0] == rc[0].apply_sync(os.getpid)
    assert isinstance(outcomes[1], par.EngineError)


def test_frozen_engine_is_declared_lost_by_heartbeat(small_cluster) -> None:
    _, rc = small_cluster
    pid = rc[0].apply_sync(os.getpid)
    ar = rc[0].apply_async(time.sleep, 60)
    time.sleep(0.2)
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(par.EngineError, match="missed heartbeats"):
            ar.get(timeout=15)
        assert 0 not in rc.ids
    finally:
        os.kill(pid, signal.SIGKILL)


def test_engines_follow_a_grown_heartbeat_and_a_frozen_one_is_still_lost() -> None:
    """Three engines at two heartbeats a second: the interval grows to 2 s and the timeout
    with it. The first engine heard 1 s at registration and 2 s only in the answers to its
    heartbeats; none is lost for the longer interval, and one that freezes still is."""
    args = ["--heartbeat", "0.2", "--heartbeat-timeout", "1.2", "--heartbeats-per-second", "2"]
    with par.Cluster(n=3, controller_args=args) as rc:
        status = rc.status()
        assert (status["heartbeat"], status["heartbeat_timeout"]) == (2.0, 12.0)
        ages = slowest_beats(rc, 8)
        assert sorted(ages) == [0, 1, 2]
        assert min(ages.values()) > 1.6  # at 1 s no beat would be this old
        pid = rc[0].apply_sync(os.getpid)
        ar = rc[0].apply_async(time.sleep, 60)
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(par.EngineError, match="missed heartbeats"):
                ar.get(timeout=40)
            assert rc.ids == [1, 2]
        finally:
            os.kill(pid, signal.SIGKILL)


def test_load_balanced_tasks_held_by_a_dead_engine_fail_and_others_run(small_cluster) -> None:
    _, rc = small_cluster
    lv = rc.load_balanced_view()
    pids = set(rc[:].apply_sync(os.getpid))
    victim = rc[1].apply_sync(os.getpid)
    ars = [lv.apply_async(lambda: (time.sleep(0.5), os.getpid())[1]) for _ in range(6)]
    time.sleep(0.2)
    os.kill(victim, signal.SIGKILL)
    outcomes = [ar.get(timeout=30, return_exceptions=True) for ar in ars]
    errors = [o for o in outcomes if isinstance(o, par.EngineError)]
    ok = [o for o in outcomes if not isinstance(o, BaseException)]
    assert errors, "the dead engine held at least one task"
    assert ok and set(ok) <= pids - {victim}


def test_sigint_interrupts_a_running_task_and_the_engine_survives(small_cluster) -> None:
    _, rc = small_cluster

    def spin() -> None:
        while True:
            time.sleep(0.01)

    ar = rc[0].apply_async(spin)
    time.sleep(0.3)
    rc.send_signal("SIGINT", targets=[0])
    with pytest.raises(par.RemoteError) as info:
        ar.get(timeout=10)
    assert info.value.ename == "KeyboardInterrupt"
    assert rc[0].apply_sync(lambda: 1 + 1) == 2
    rc.send_signal(signal.SIGINT, targets=[0])  # idle: ignored, engine stays
    time.sleep(0.3)
    assert rc.ids == [0, 1]


def test_a_task_that_exits_fails_with_system_exit_and_the_engine_lives(small_cluster) -> None:
    _, rc = small_cluster
    pid = rc[0].apply_sync(os.getpid)

    def parse_arguments() -> None:
        import argparse

        argparse.ArgumentParser(prog="tool").parse_args(["--no-such-flag"])

    for call, code in ((lambda: sys.exit(3), "3"), (parse_arguments, "2")):
        with pytest.raises(par.RemoteError) as info:
            rc[0].apply_sync(call)
        assert (info.value.ename, info.value.evalue) == ("SystemExit", code)
    with pytest.raises(par.RemoteError) as info:
        rc[0].execute("import sys; sys.exit('bye')", block=True)
    assert (info.value.ename, info.value.evalue) == ("SystemExit", "bye")
    with pytest.raises(par.RemoteError, match="SystemExit"):
        rc.load_balanced_view().apply_sync(sys.exit, 4)
    assert rc.ids == [0, 1]
    assert rc[0].apply_sync(os.getpid) == pid


def test_engine_answers_heartbeats_while_user_code_holds_the_cpu(small_cluster) -> None:
    _, rc = small_cluster

    def busy(seconds: float) -> int:
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        return n

    assert rc[0].apply_sync(busy, 3.0) > 0  # twice the heartbeat timeout
    assert rc.ids == [0, 1]


def test_message_signed_with_the_wrong_key_is_not_executed(small_cluster, tmp_path: Path) -> None:
    _, rc = small_cluster
    marker = tmp_path / "forged-ran"
    info = rc._info
    forger = protocol.Session(b"not the cluster key")

    def forged() -> None:
        Path(marker).write_text("ran")

    from par import serialize

    fdata, digest = serialize.dumps_function(forged)
    adata, _ = serialize.dumps(((), {}))
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.connect(info.client_url)
        header = {"t": "apply", "q": "d", "ids": ["forged"], "tg": [0], "f": digest, "c": b"x"}
        sock.send_multipart(forger.serialize(header, [fdata, adata]))
        time.sleep(0.5)
    finally:
        ctx.destroy(linger=0)
    assert not marker.exists()
    assert rc.status()["dropped"] >= 1
    assert rc[0].apply_sync(lambda: "fine") == "fine"


@pytest.mark.parametrize(
    "which", ["client_url", "engine_url", "control_url", "direct_url", "engine_direct_url"]
)
def test_garbage_on_every_controller_socket_is_dropped(small_cluster, which: str) -> None:
    _, rc = small_cluster
    url = getattr(rc._info, which)
    before = rc.status()["dropped"]
    ctx = zmq.Context()
    try:
        for kind in (zmq.DEALER, zmq.REQ, zmq.PUSH):
            sock = ctx.socket(kind)
            # A send with no peer to take it waits for one (the controller may drop a
            # connection over its garbage, and zmq connects again): give up on the socket
            # after 2 s rather than wait for ever (it hung a fresh-clone run for 120 s).
            sock.setsockopt(zmq.SNDTIMEO, 2000)
            sock.connect(url)
            for frames in (
                [b""],
                [b"garbage"],
                [protocol.DELIM],
                [protocol.DELIM, b"s", b"\xff" * 50],
                [b"x" * 100_000, protocol.DELIM, b"1" * 16, b"\x80"],
            ):
                try:
                    sock.send_multipart(frames)
                except zmq.Again:
                    break
                if kind == zmq.REQ:
                    break
        time.sleep(0.5)
    finally:
        ctx.destroy(linger=0)
    assert rc.status()["dropped"] > before
    assert rc[:].apply_sync(lambda: 3) == [3, 3]


def test_garbage_sent_straight_to_an_engine_port_does_not_kill_it(small_cluster) -> None:
    """Raw TCP junk at the controller's engine port: nobody crashes."""
    import socket as pysocket

    _, rc = small_cluster
    host, port = rc._info.engine_url.rsplit(":", 1)
    with pysocket.create_connection((host.split("//")[1], int(port)), timeout=5) as s:
        s.sendall(os.urandom(4096))
    time.sleep(0.3)
    assert rc[:].apply_sync(lambda: "ok") == ["ok", "ok"]


CLIENT_THAT_DIES = """
import os, sys, time, par
rc = par.Client(sys.argv[1])
lv = rc.load_balanced_view()
ar = lv.map_async(time.sleep, [0.01] * 400)
print(" ".join(ar.msg_ids[:3]), flush=True)
time.sleep(0.3)
os._exit(1)  # vanish mid-map: no close, no goodbye
"""


def test_a_client_that_vanishes_mid_map_leaves_the_cluster_healthy(small_cluster) -> None:
    import subprocess
    import sys

    c, rc = small_cluster
    from par import paths

    proc = subprocess.run(
        [sys.executable, "-c", CLIENT_THAT_DIES, str(paths.connection_file(c.cluster_id))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    first_ids = proc.stdout.split()
    assert len(first_ids) == 3
    # The rule: a vanished client's queued tasks still run; their results are kept in the
    # hub's records (get_result works from any client) and the cluster stays healthy.
    deadline = time.monotonic() + 60
    while rc.status()["pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert rc.status()["pending"] == 0
    assert rc.get_result(first_ids[0], block=True) == [None]  # one chunk of the map
    assert rc.load_balanced_view().map_sync(lambda x: -x, range(10)) == [-x for x in range(10)]


def test_engine_error_says_how_the_engine_ended_and_its_last_output(small_cluster) -> None:
    _, rc = small_cluster
    pid = rc[1].apply_sync(os.getpid)
    ar = rc[1].apply_async(time.sleep, 60)
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(par.EngineError) as info:
        ar.get(timeout=10)
    text = info.value.evalue
    assert "was killed by signal 9 (SIGKILL)" in text
    assert "its last output" in text and "registered as engine 1" in text


def test_twenty_clients_at_once_all_get_correct_results(cluster: par.Cluster) -> None:
    import threading

    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def one_client(k: int) -> None:
        try:
            with cluster.connect_client_sync() as c:
                results[k] = c.load_balanced_view().map_sync(lambda x, k=k: x * k, range(300))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one_client, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert all(results[k] == [x * k for x in range(300)] for k in range(20))


def test_restart_engines_replaces_a_lost_engine() -> None:
    with par.Cluster(n=2, restart_lost_engines=True) as rc:
        pid = rc[0].apply_sync(os.getpid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while rc.ids != [1, 2] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rc.ids == [1, 2]
        assert rc[2].apply_sync(os.getpid) != pid


def test_a_task_that_runs_out_of_memory_fails_and_the_engine_lives(small_cluster) -> None:
    _, rc = small_cluster

    def hog() -> int:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, hard))
        try:
            return len(bytearray(4 << 30))
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    with pytest.raises(par.RemoteError) as info:
        rc[0].apply_sync(hog)
    assert info.value.ename == "MemoryError"
    assert rc[0].apply_sync(lambda: "still here") == "still here"


def test_a_function_the_engine_cannot_import_gives_a_clear_error(small_cluster, tmp_path) -> None:
    import importlib
    import sys

    _, rc = small_cluster
    (tmp_path / "only_on_client.py").write_text("def double(x):\n    return 2 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("only_on_client")
        with pytest.raises(par.RemoteError) as info:
            rc[0].apply_sync(module.double, 4)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("only_on_client", None)
    assert info.value.ename == "ModuleNotFoundError"
    assert "only_on_client" in info.value.evalue
    assert rc[0].apply_sync(lambda: 1) == 1
