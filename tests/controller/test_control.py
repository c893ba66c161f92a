"""The control path (abort, shutdown, signals), growing a cluster, and hand-started processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import par
import pytest
import zmq
from par import paths
from par.controller.outbox import FAILED_BATCH
from par.testing import wait_gone

from ..conftest import wait_for_file


def test_abort_drops_queued_tasks_and_spares_running_ones() -> None:
    with par.Cluster(n=1, controller_args=["--hwm", "1"]) as rc:
        lv = rc.load_balanced_view()
        running = lv.apply_async(time.sleep, 1.0)
        queued = [lv.apply_async(lambda i=i: i) for i in range(5)]
        time.sleep(0.3)
        rc.abort(queued[2:])
        assert running.get(timeout=30) is None
        assert [ar.get(timeout=30) for ar in queued[:2]] == [0, 1]
        for ar in queued[2:]:
            with pytest.raises(par.TaskAborted):
                ar.get(timeout=30)
        assert rc.status()["counts"]["aborted"] == 3


def test_an_abort_of_many_queued_tasks_fails_them_together() -> None:
    """The controller tells the client of the tasks it aborts in failure batches (ids and
    the error once): each task fails with TaskAborted, one error object for a batch, and
    another client still reads each one's outcome. They were one reply each, and an
    abort of a million queued tasks was not answered in 120 s."""
    cluster = par.Cluster(n=1, controller_args=["--hwm", "1"])
    rc = cluster.start_and_connect_sync()
    try:
        ar = rc.load_balanced_view().map_async(time.sleep, [2.0] + [0.0] * 30_000)
        time.sleep(0.3)
        rc.abort(ar)
        with pytest.raises(par.CompositeError):
            ar.get(timeout=60)
        assert rc.wait(timeout=10)
        aborted = [m for m in ar.msg_ids if ar.metadata_of(m)["status"] == "aborted"]
        assert len(aborted) == 30_000  # all but the one running (the engine holds one)
        # one error for each failure batch, not one for each task
        assert len({id(ar.error_of(m)) for m in aborted}) == 30_000 // FAILED_BATCH
        assert isinstance(ar.error_of(aborted[0]), par.TaskAborted)
        other = cluster.connect_client_sync()
        try:
            with pytest.raises(par.TaskAborted):
                other.get_result(aborted[-1]).get(timeout=30)
        finally:
            other.close()
        assert rc.status()["counts"]["aborted"] == len(aborted)
    finally:
        cluster.stop_cluster_sync()


def test_an_abort_of_more_tasks_than_a_query_holds_goes_in_parts(rc: par.Client) -> None:
    """A query's header is bounded (16 MB): an abort of 700,000 message ids (25 MB) goes
    as several queries; another query that large fails at once, saying why. The
    controller dropped it, and the client timed out saying it did not answer."""
    ids = [f"{'0' * 24}-{i:x}" for i in range(700_000)]
    rc.abort(ids)  # none of them known: each remembered as aborted should it come
    with pytest.raises(ValueError, match="more than the controller reads"):
        rc.result_status(ids)
    assert rc.queue_status()["unassigned"] == 0  # the controller answers on


def test_clear_is_a_control_message_ahead_of_queued_work_not_a_task() -> None:
    import asyncio

    with par.Cluster(n=2) as rc:
        dv = rc[:]
        dv.push({"a": 5}, block=True)
        busy = rc[0].apply_async(time.sleep, 1.5)
        queued = rc[0].apply_async(lambda: "a" in globals())
        time.sleep(0.3)
        sent, held = rc.history, set(rc.metadata)
        assert rc.clear(targets=0, block=True) is None
        assert not busy.done()  # it went ahead of the engine's running and queued work
        assert queued.get(timeout=30) is False and busy.get(timeout=30) is None
        assert rc.history == sent and set(rc.metadata) <= held  # not a task
        assert rc[1].pull("a", block=True) == 5  # only the engine named was cleared
        done = dv.clear()  # the view's block (False): an awaitable Future of the engine ids
        assert asyncio.run(asyncio.wait_for(done, 30)) == [0, 1]
        with pytest.raises(par.RemoteError, match="NameError"):
            rc[1].pull("a", block=True)
        assert len(rc.history) == len(sent) + 2  # the two pulls


def test_a_clear_waiting_for_an_engine_that_dies_is_answered() -> None:
    import asyncio

    # A long heartbeat timeout: on a busy machine a late heartbeat must not end the wait
    # early; the engine killed below is lost at once (its connection drops).
    with par.Cluster(n=2, controller_args=["--heartbeat-timeout", "120"]) as rc:
        pid = rc[1].apply_sync(os.getpid)
        os.kill(pid, signal.SIGSTOP)  # its control thread cannot answer the clear
        try:
            done = rc.clear(block=False)
            time.sleep(1.0)
            assert not done.done()  # it waits for the stopped engine
        finally:
            os.kill(pid, signal.SIGKILL)
        # the lost engine's namespace went with it: the clear is answered, not left hanging
        assert asyncio.run(asyncio.wait_for(done, 30)) == [0, 1]
        assert rc[0].apply_sync(lambda: 1) == 1


def test_abort_reaches_tasks_already_queued_on_an_engine() -> None:
    with par.Cluster(n=1) as rc:
        dv = rc[0]
        first = dv.apply_async(time.sleep, 1.0)
        second = dv.apply_async(lambda: "ran")
        time.sleep(0.3)
        second.abort()
        assert first.get(timeout=30) is None
        with pytest.raises(par.TaskAborted):
            second.get(timeout=30)
        assert dv.apply_sync(lambda: "next") == "next"


def test_an_abort_right_after_sending_reaches_the_direct_requests() -> None:
    with par.Cluster(n=1) as rc:
        dv = rc[0]
        for _ in range(15):  # no pause: the abort overtakes the requests' way to the engine
            dv.execute("import time; time.sleep(0.3)", block=False)
            one, two = dv.apply_async(lambda: 1), dv.apply_async(lambda: 2)
            dv.abort(one)
            rc.abort(two.msg_ids)
            for ar in (one, two):
                with pytest.raises(par.TaskAborted):
                    ar.get(timeout=30)
        busy = [dv.apply_async(time.sleep, 0.2) for _ in range(6)]
        dv.abort()  # all of the view's outstanding tasks
        dv.wait(timeout=30)
        for ar in busy[2:]:
            with pytest.raises(par.TaskAborted):
                ar.get()


def ignore_signals_and_sleep() -> None:
    """A task that blocks and ignores SIGINT, ignores SIGTERM, and runs on."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring signals", flush=True)
    time.sleep(600)


def test_abort_and_restart_reach_an_engine_whose_task_ignores_signals() -> None:
    c = par.Cluster(n=1)
    rc = c.start_and_connect_sync()
    try:
        pid = rc[0].apply_sync(os.getpid)
        stubborn = rc[0].apply_async(ignore_signals_and_sleep)
        queued = rc[0].apply_async(lambda: "ran")
        while "ignoring signals" not in stubborn.stdout:
            time.sleep(0.05)
        queued.abort()
        with pytest.raises(par.TaskAborted):
            queued.get(timeout=30)
        assert not stubborn.ready()
        c.restart_engine_sync(0)
        with pytest.raises(par.EngineError, match="SIGKILL"):
            stubborn.get(timeout=30)
        assert wait_gone([pid]) == []
        rc.wait_for_engines(1, timeout=30)
        assert rc[:].apply_sync(lambda: "new") == ["new"]
    finally:
        c.stop_cluster_sync()


def test_stopping_an_engine_stuck_in_a_c_call_kills_its_process(small_cluster) -> None:
    c, rc = small_cluster
    pid = rc[1].apply_sync(os.getpid)
    stuck = rc[1].apply_async(sum, range(10**15))  # holds the interpreter: no handler runs
    time.sleep(0.5)
    c.stop_engine_sync(1)
    assert wait_gone([pid], timeout=1) == []
    with pytest.raises(par.EngineError):
        stuck.get(timeout=30)
    assert rc.ids == [0]


def test_shutdown_stops_engines_and_the_hub() -> None:
    c = par.Cluster(n=3)
    rc = c.start_and_connect_sync()
    try:
        rc.shutdown(targets=[1], block=True)
        assert rc.ids == [0, 2]
        pids = [p.pid for es in c.engines.values() for p in es.processes]  # type: ignore[attr-defined]
        ctl_pid = c.controller.process.pid  # type: ignore[union-attr]
        rc.shutdown(hub=True)
        assert wait_gone([*pids, ctl_pid], timeout=15) == []
    finally:
        c.stop_cluster_sync()


def test_add_engines_to_a_running_cluster_and_connect_by_file() -> None:
    c = par.Cluster(n=1)
    rc = c.start_and_connect_sync()
    try:
        set_id = c.add_engines(2)
        rc.wait_for_engines(3, timeout=30)
        assert rc.ids == [0, 1, 2]
        assert set_id in c.engines
        with par.Client(paths.connection_file(c.cluster_id)) as other:
            assert other.ids == [0, 1, 2]
            assert other[:].apply_sync(lambda: 5) == [5, 5, 5]
        c.stop_engines_sync(set_id)
        deadline = time.monotonic() + 15
        while rc.ids != [0] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rc.ids == [0]
    finally:
        c.stop_cluster_sync()


def test_controller_and_engine_started_by_hand(tmp_path: Path) -> None:
    conn = tmp_path / "conn.json"
    ctl = subprocess.Popen(
        [sys.executable, "-m", "par", "controller", "--cluster-id", "byhand", "--file", str(conn)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = None
    try:
        wait_for_file(conn)
        engine = subprocess.Popen(
            [sys.executable, "-m", "par", "engine", "--file", str(conn)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with par.Client(conn, timeout=20) as rc:
            rc.wait_for_engines(1, timeout=30)
            assert rc[0].apply_sync(lambda: "by hand") == "by hand"
            assert rc.engines()[0]["pid"] == engine.pid
        assert conn.stat().st_mode & 0o777 == 0o600
    finally:
        for proc in (engine, ctl):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=15)
    assert ctl.returncode == 0


def test_engine_stops_when_its_controller_is_gone(tmp_path: Path) -> None:
    conn = tmp_path / "conn.json"
    ctl = subprocess.Popen(
        [sys.executable, "-m", "par", "controller", "--file", str(conn), "--cluster-id", "gone"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with par.Client(conn, timeout=20) as rc:
        engine = subprocess.Popen(
            [sys.executable, "-m", "par.engine", "--file", str(conn), "--controller-timeout", "2"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        rc.wait_for_engines(1, timeout=30)
        ctl.kill()
        ctl.wait()
        assert engine.wait(timeout=20) == 0
        assert engine.stderr is not None and "silent" in engine.stderr.read()


def test_an_idle_engine_keeps_hearing_a_live_controller(tmp_path: Path) -> None:
    """Heartbeats are answered only when they ask (after a sixth of the engine's
    controller timeout without a word): an engine idle for three of its timeouts
    asks, hears, and stays."""
    conn = tmp_path / "conn.json"
    ctl = subprocess.Popen(
        [sys.executable, "-m", "par", "controller", "--file", str(conn), "--cluster-id", "heard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = None
    try:
        with par.Client(conn, timeout=20) as rc:
            cmd = [sys.executable, "-m", "par.engine", "--file", str(conn)]
            engine = subprocess.Popen(
                [*cmd, "--controller-timeout", "2"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            rc.wait_for_engines(1, timeout=30)
            time.sleep(6)
            assert engine.poll() is None
            assert rc[:].apply_sync(os.getpid) == [engine.pid]
    finally:
        for proc in (engine, ctl):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=15)


def test_engine_without_a_controller_gives_up_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "par.engine",
            "--file",
            str(tmp_path / "none.json"),
            "--timeout",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "connection file" in result.stderr and "not found" in result.stderr


def test_a_controller_beyond_loopback_encrypts_with_curve() -> None:
    with par.Cluster(n=2, ip="0.0.0.0", location="127.0.0.1") as rc:
        assert rc._info.curve_serverkey
        assert rc[:].apply_sync(lambda: "secret") == ["secret", "secret"]
        ctx = zmq.Context()
        try:  # a plain (unencrypted) peer gets nowhere: the handshake fails, nothing is read
            plain = ctx.socket(zmq.DEALER)
            plain.connect(rc._info.client_url)
            plain.send_multipart([b"hello"])
            time.sleep(0.3)
        finally:
            ctx.destroy(linger=0)
        assert rc.status()["dropped"] == 0


def test_curve_can_be_forced_on_loopback() -> None:
    with par.Cluster(n=1, controller_args=["--curve", "on"]) as rc:
        assert rc._info.curve_serverkey
        assert rc[0].apply_sync(lambda: 1) == 1
    with par.Cluster(n=1) as rc:
        assert rc._info.curve_serverkey == ""


def test_writing_a_connection_file_never_changes_its_directory_mode(tmp_path: Path) -> None:
    from par.connection import ConnectionInfo

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    info = ConnectionInfo(
        "c", "00", "tcp://a:1", "tcp://a:2", "tcp://a:3", "tcp://a:4", "tcp://a:5", 1, "here"
    )
    info.write(shared / "conn.json")
    assert shared.stat().st_mode & 0o777 == 0o755
    assert (shared / "conn.json").stat().st_mode & 0o777 == 0o600
    fresh = tmp_path / "new" / "dir"
    info.write(fresh / "conn.json")
    assert fresh.stat().st_mode & 0o777 == 0o700


def test_one_engine_at_a_time_stop_restart_and_signal() -> None:
    import asyncio

    c = par.Cluster(n=3)
    rc = c.start_and_connect_sync()
    try:
        ar = rc[0].apply_async(time.sleep, 30)
        time.sleep(0.3)
        c.signal_engine_sync("SIGINT", 0)
        with pytest.raises(par.RemoteError, match="KeyboardInterrupt"):
            ar.get(timeout=15)
        c.stop_engine_sync(1)
        assert rc.ids == [0, 2]
        c.restart_engine_sync(2)
        rc.wait_for_engines(2, timeout=30)
        deadline = time.monotonic() + 30
        while rc.ids != [0, 3] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rc.ids == [0, 3]
        asyncio.run(c.stop_engine(3))
        assert rc.ids == [0]
    finally:
        c.stop_cluster_sync()


def test_views_delegate_shutdown_purge_and_get_result() -> None:
    with par.Cluster(n=2) as rc:
        lv = rc.load_balanced_view()
        ar = lv.apply_async(lambda: "kept")
        ar.get(timeout=30)
        assert lv.get_result(ar.msg_ids[0], block=True) == "kept"
        rc[0].apply_sync(lambda: "the client's last")
        assert lv.get_result(block=True) == "kept"  # the view's last, not the client's
        assert lv.get_result([0], block=True) == "kept"  # indices into the view's history
        assert lv.purge_results(jobs=ar) == 1
        rc[1].shutdown(block=True)
        assert rc.ids == [0]


def test_an_engines_heartbeats_bring_its_stats_and_running_task(small_cluster) -> None:
    """Heartbeats, answered by the control relay and passed to the hub in batches, still
    say what each engine runs and what it uses."""
    _, rc = small_cluster
    ar = rc[0].apply_async(time.sleep, 3)
    deadline = time.monotonic() + 10
    engine: dict = {}
    while time.monotonic() < deadline:
        (engine,) = (e for e in rc.status()["engines"] if e["id"] == 0)
        if engine["stats"].get("task") == ar.msg_ids[0]:
            break
        time.sleep(0.2)
    assert engine["stats"].get("task") == ar.msg_ids[0] and engine["stats"]["rss"] > 0
    assert engine["heartbeat_age"] < 3
    ar.get(timeout=10)
