"""A cluster's life when things go wrong: a crashed controller, a restore by hand, a
damaged cluster file, an earlier engine set that died, a count of engines the machine
cannot hold. Run as a user runs them, with the `par` command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import par
import psutil
import pytest
from par import paths
from par.testing import wait_gone
from par_launcher_local import LocalEngineSetLauncher

from ..conftest import cluster_pids, par_cli, run_par


def serving(cluster_id: str) -> list[int]:
    """Every process started on the cluster's connection file, whatever recorded it."""
    conn = str(paths.connection_file(cluster_id))
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if conn in (proc.info["cmdline"] or []) and proc.pid != os.getpid():
            found.append(proc.pid)
    return found


def controller_pid(cluster_id: str) -> int:
    return int(json.loads(paths.connection_file(cluster_id).read_text())["controller_pid"])


def crash_controller(cluster_id: str) -> None:
    pid = controller_pid(cluster_id)
    os.kill(pid, signal.SIGKILL)
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)


def kill_engine(cluster_id: str, pid: int) -> None:
    """Kill an engine and wait until its controller has seen it go."""
    os.kill(pid, signal.SIGKILL)
    with par.Client(cluster_id=cluster_id) as rc:
        deadline = time.monotonic() + 30
        while rc.ids and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not rc.ids


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if not line.startswith("par: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_start_after_a_crash_offers_a_restore_and_deletes_nothing() -> None:
    cid = "life-crash"
    started = run_par("start", "-n", "2", "--daemonize", "--db", "sqlite", "--cluster-id", cid)
    assert started.returncode == 0, started.stderr
    folder = paths.cluster_dir(cid)
    with par.Client(cluster_id=cid) as rc:
        ar = rc.load_balanced_view().apply_async(lambda: "kept")
        assert ar.get(timeout=30) == "kept"
        before, done = rc.ids, ar.msg_ids[0]
        time.sleep(0.3)  # one loop pass writes the record
    engines = cluster_pids(cid)[1:]
    crash_controller(cid)

    again = run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid)
    assert again.returncode == 1
    assert one_line(again) == (
        f"par start: error: cluster '{cid}' lost its controller and 2 of its engines still "
        f"run: bring it back with `par start --restore --cluster-id {cid}`, or end it with "
        f"`par stop --cluster-id {cid}` and start again (its records and logs are kept)"
    )
    assert (folder / "records.sqlite").exists() and (folder / "logs").is_dir()

    restored = run_par("start", "--restore", "--daemonize", "--cluster-id", cid)
    assert restored.returncode == 0, restored.stderr
    assert "is up with 2 engines" in restored.stdout
    try:
        with par.Client(cluster_id=cid) as rc:
            assert rc.ids == before
            assert rc.get_result(done, block=True) == "kept"
            assert sorted(rc[:].apply_sync(os.getpid)) == sorted(engines)  # the same engines
    finally:
        pids = serving(cid)
        stopped = run_par("stop", "--cluster-id", cid)
    assert stopped.returncode == 0, stopped.stderr
    assert wait_gone(pids) == []
    kept = Path(stopped.stdout.rsplit(" is kept in ", 1)[1].strip())
    assert kept.parent == paths.par_home() / "previous" and (kept / "records.sqlite").exists()


def test_a_crashed_cluster_ended_with_stop_leaves_its_records_and_logs_for_a_new_start() -> None:
    cid = "life-anew"
    started = run_par("start", "-n", "1", "--daemonize", "--db", "sqlite", "--cluster-id", cid)
    assert started.returncode == 0, started.stderr
    engines = cluster_pids(cid)[1:]
    crash_controller(cid)
    stopped = run_par("stop", "--cluster-id", cid)
    assert stopped.returncode == 0, stopped.stderr
    assert wait_gone(engines) == []  # the crashed controller's engines are not left orphaned
    kept = Path(stopped.stdout.rsplit(" is kept in ", 1)[1].strip())
    assert sorted(p.name for p in kept.iterdir()) == [
        "events.jsonl", "logs", "records.sqlite", "records.sqlite-shm", "records.sqlite-wal"
    ]  # fmt: skip
    assert any(p.name == "controller.log" for p in (kept / "logs").iterdir())

    anew = run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid)
    assert anew.returncode == 0, anew.stderr
    run_par("stop", "--cluster-id", cid)
    assert (kept / "records.sqlite").exists()


def test_a_cluster_whose_controller_a_client_stopped_is_no_crash() -> None:
    cid = "life-shut"
    assert run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid).returncode == 0
    pids = cluster_pids(cid)
    with par.Client(cluster_id=cid) as rc:
        rc.shutdown(hub=True, block=True)
    assert wait_gone(pids) == []
    again = run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid)
    assert again.returncode == 0, again.stderr
    assert run_par("stop", "--cluster-id", cid).returncode == 0


def test_restore_is_refused_where_there_is_nothing_to_restore() -> None:
    result = run_par("start", "--restore", "--cluster-id", "life-none")
    assert result.returncode == 1
    assert one_line(result) == (
        "par start: error: there is no cluster 'life-none' to restore (stopped, or never started)"
    )
    mixed = run_par("start", "--restore", "-n", "2", "--cluster-id", "life-none")
    assert mixed.returncode == 1
    assert one_line(mixed) == (
        "par start: error: --restore brings the cluster back with its own settings: drop -n"
    )


def test_controller_refuses_the_connection_file_of_a_running_cluster() -> None:
    cid = "life-live"
    assert run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid).returncode == 0
    try:
        conn = paths.connection_file(cid)
        before = conn.read_bytes()
        for args in ([], ["--restore"]):
            result = run_par("controller", "--cluster-id", cid, *args)
            assert result.returncode == 1
            assert one_line(result) == (
                f"par controller: error: cluster '{cid}' is running on {conn} (controller pid "
                f"{controller_pid(cid)}): stop it with `par stop --cluster-id {cid}`, or give "
                "this controller another --cluster-id or --file"
            )
        assert conn.read_bytes() == before
        with par.Client(cluster_id=cid) as rc:
            assert rc[:].apply_sync(lambda: "still here") == ["still here"]
    finally:
        run_par("stop", "--cluster-id", cid)


def test_stop_ends_a_controller_restored_by_hand(tmp_path: Path) -> None:
    """It registers each engine once, though the engines' heartbeats piled up meanwhile."""
    cid = "life-hand"
    assert run_par("start", "-n", "2", "--daemonize", "--cluster-id", cid).returncode == 0
    crash_controller(cid)
    time.sleep(3)  # the engines keep sending heartbeats into the void
    log = tmp_path / "restored.log"
    with open(log, "w") as out:
        by_hand = subprocess.Popen(
            par_cli("controller", "--restore", "--cluster-id", cid), stderr=out
        )
    try:
        with par.Client(cluster_id=cid, timeout=30) as rc:
            rc.wait_for_engines(2, timeout=30)
            time.sleep(1)  # any registration asked again would come now
        registering = [line for line in log.read_text().splitlines() if "registering" in line]
        assert len(registering) == 2, registering
        pids = serving(cid)
        stopped = run_par("stop", "--cluster-id", cid)
        assert stopped.returncode == 0, stopped.stderr
        assert by_hand.wait(timeout=30) == 0
        assert wait_gone(pids) == []
    finally:
        if by_hand.poll() is None:
            by_hand.kill()


def test_a_restore_on_a_busy_port_is_a_one_line_error() -> None:
    cid = "life-busy"
    assert run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid).returncode == 0
    crash_controller(cid)
    squatter = socket.socket()  # another program took the client port meanwhile
    try:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        url = f"tcp://127.0.0.1:{squatter.getsockname()[1]}"
        conn = paths.connection_file(cid)
        conn.write_text(json.dumps({**json.loads(conn.read_text()), "client_url": url}))
        result = run_par("controller", "--restore", "--cluster-id", cid)
        assert result.returncode == 1
        assert one_line(result) == (
            f"par controller: error: cannot restore on {url}: Address already in use; is the "
            "controller still running, or another program on that port?"
        )
    finally:
        squatter.close()
        run_par("stop", "--cluster-id", cid)


def test_stop_with_a_truncated_cluster_file_stops_what_it_finds() -> None:
    for cid in ("life-cut", "life-whole"):
        assert run_par("start", "-n", "2", "--daemonize", "--cluster-id", cid).returncode == 0
    pids = serving("life-cut") + serving("life-whole")
    record = paths.cluster_file("life-cut")
    record.write_text(record.read_text()[:100])
    result = run_par("stop", "--all")
    assert result.returncode == 0, result.stderr
    assert f"par: {record} is unreadable (" in result.stderr
    assert "stopped cluster 'life-cut'" in result.stdout
    assert "stopped cluster 'life-whole'" in result.stdout
    assert wait_gone(pids) == []


def test_a_count_of_engines_the_machine_cannot_hold_is_refused() -> None:
    result = run_par("start", "-n", "10000000", "--daemonize", "--cluster-id", "life-huge")
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(
        "par start: error: 10000000 local engines are more than this machine can hold (about "
    )
    assert line.endswith("start fewer, or pass --force to start them anyway")
    assert not serving("life-huge") and not paths.cluster_dir("life-huge").exists()


@pytest.mark.parametrize("fork", [False, True])
def test_a_start_killed_half_way_leaves_no_engine_par_stop_cannot_find(fork: bool) -> None:
    """Engines are on record once started (spawned ones start in waves; a fork server is on
    record before it forks): `par start` killed half way leaves nothing that `par stop`
    does not end."""
    cid = f"life-killed-{fork}"
    how = "--fork" if fork else "--no-fork"
    n = max(40, 3 * LocalEngineSetLauncher.WAVE)  # more than a wave, on any number of cores
    start = subprocess.Popen(
        par_cli("start", "-n", str(n), "--force", how, "--daemonize", "--cluster-id", cid),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Engines that run, not their logs: a log is opened before its engine's exec.
        deadline = time.monotonic() + 60
        while len(serving(cid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        start.kill()
        start.wait()
        pids = serving(cid)
        if not fork:  # the fork server goes on forking without `par start`
            assert 1 < len(pids) - 1 < n  # the controller and some, not all, of the engines
        recorded = json.loads(paths.cluster_file(cid).read_text())["engines"]
        assert recorded  # the set was on record before its engines started
        stopped = run_par("stop", "--cluster-id", cid)
        assert stopped.returncode == 0, stopped.stderr
        assert wait_gone(pids) == []
        assert serving(cid) == []
    except BaseException:  # a failure here must not leave a cluster to fail the tests after it
        start.kill()
        run_par("stop", "--cluster-id", cid)
        raise


def test_engines_added_after_an_earlier_set_died() -> None:
    cid = "life-grow"
    assert run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid).returncode == 0
    try:
        (first,) = cluster_pids(cid)[1:]
        kill_engine(cid, first)
        grown = run_par("engines", "-n", "2", "--cluster-id", cid)
        assert grown.returncode == 0, grown.stderr
        assert "now has 2 engines" in grown.stdout
        listing = run_par("list").stdout.splitlines()
        assert [line.split()[:3] for line in listing if line.startswith(cid)] == [
            [cid, "running", "2"]
        ]
    finally:
        run_par("stop", "--cluster-id", cid)


def test_cluster_add_engines_after_an_earlier_set_died() -> None:
    cluster = par.Cluster(n=1)
    rc = cluster.start_and_connect_sync()
    try:
        (first,) = rc[:].apply_sync(os.getpid)
        kill_engine(cluster.cluster_id, first)
        set_id = cluster.add_engines(2)
        cluster.wait_for_engines_sync(rc, 2, sets=[set_id])
        assert list(cluster.engines) == [set_id]  # the set that died is forgotten
        assert cluster.engines_running() == 2
    finally:
        cluster.stop_cluster_sync()


@pytest.mark.parametrize("value", ["-5", "0", "nan"])
def test_a_bad_engine_timeout_is_a_one_line_error(value: str) -> None:
    result = run_par("start", "-n", "1", "--engine-timeout", value, "--cluster-id", "life-timeout")
    assert result.returncode == 1
    assert one_line(result) == (
        "par start: error: the engine timeout must be a positive number of seconds, "
        f"not {float(value)}"
    )


def test_a_par_home_par_cannot_write_is_a_one_line_error(tmp_path: Path) -> None:
    home = tmp_path / "read-only"
    home.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root writes anywhere: a file system that refuses it instead
        home = Path("/sys/par-home")
    env = {**os.environ, "PAR_HOME": str(home)}
    result = subprocess.run(
        par_cli("start", "-n", "1"), capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 1
    line = one_line(result)
    assert line.startswith(f"par start: error: cannot create {home}/clusters")
    assert line.endswith(f"set PAR_HOME to a folder you can write (it is {home})")


@pytest.mark.parametrize("answer", ["r", "n"])
def test_a_start_at_a_terminal_asks_whether_to_restore_a_crashed_cluster(answer: str) -> None:
    cid = f"life-ask-{answer}"
    assert run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid).returncode == 0
    engines = cluster_pids(cid)[1:]
    crash_controller(cid)
    terminal, user = os.openpty()
    try:
        start = subprocess.Popen(
            par_cli("start", "-n", "1", "--daemonize", "--cluster-id", cid),
            stdin=user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(terminal, f"{answer}\n".encode())
        _, err = start.communicate(timeout=120)
    finally:
        os.close(terminal)
        os.close(user)
    try:
        assert start.returncode == 0, err
        assert "Restore it (r), start anew in its place (n), or quit (q)? [R/n/q]" in err
        with par.Client(cluster_id=cid) as rc:
            rc.wait_for_engines(1, timeout=30)
            pids = rc[:].apply_sync(os.getpid)
        if answer == "r":
            assert pids == engines
        else:
            assert wait_gone(engines) == []
            assert "par: what it left is kept in " in err
    finally:
        run_par("stop", "--cluster-id", cid)


def test_no_process_of_these_tests_is_left() -> None:
    ours = [cid for cid in paths.list_cluster_ids() if cid.startswith("life-")]
    assert not ours
    home = str(paths.par_home())
    left = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(home in arg and "/life-" in arg for arg in p.info["cmdline"] or [])
    ]
    assert not left
