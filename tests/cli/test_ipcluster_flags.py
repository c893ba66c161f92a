"""ipcluster's, ipcontroller's and ipengine's flags on the `par` command: `--work-dir`,
`--profile`, `--clean-logs`, `--log-to-file`. Run as a user runs them, in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import par
import psutil
from par import paths
from par.testing import wait_gone

from ..conftest import by_hand, cluster_pids, par_cli, run_par, wait_for_file


def stderr_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a command that failed printed."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    return lines[0]


def test_engines_run_in_the_work_dir_of_their_start(tmp_path: Path) -> None:
    cid = "flags-wd"
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "helper_here.py").write_text("VALUE = 'imported from the work dir'\n")
    started = run_par(
        "start", "-n", "2", "--daemonize", "--cluster-id", cid, "--work-dir", str(first)
    )
    assert started.returncode == 0, started.stderr
    try:
        # a set of its own work dir, spawned (not forked); then one in the cluster's
        grown = run_par(
            "engines", "-n", "1", "--cluster-id", cid, "--launcher", "local", "--no-fork",
            "--work-dir", str(second),
        )  # fmt: skip
        assert grown.returncode == 0, grown.stderr
        assert run_par("engines", "-n", "1", "--cluster-id", cid).returncode == 0
        missing = run_par(
            "engines", "-n", "1", "--cluster-id", cid, "--work-dir", str(tmp_path / "no")
        )
        assert stderr_line(missing) == (
            f"par engines: error: work dir '{tmp_path / 'no'}' does not exist: give an "
            "existing directory"
        )
        with par.Client(cluster_id=cid) as rc:
            rc.wait_for_engines(4, timeout=60)
            assert len(rc.ids) == 4  # the refused set started nothing
            where = rc[:].apply_sync(os.getcwd)
            assert where == [str(first.resolve())] * 2 + [
                str(second.resolve()),
                str(first.resolve()),
            ]
            helper = rc[0].apply_sync(lambda: __import__("helper_here").VALUE)
            assert helper == "imported from the work dir"
    finally:
        pids = cluster_pids(cid)
        run_par("stop", "--cluster-id", cid)
    assert wait_gone(pids) == []


def test_a_work_dir_that_does_not_exist_is_refused_before_anything_starts(tmp_path: Path) -> None:
    cid = "flags-wd-missing"
    result = run_par("start", "-n", "1", "--cluster-id", cid, "--work-dir", str(tmp_path / "gone"))
    assert stderr_line(result) == (
        f"par start: error: work dir '{tmp_path / 'gone'}' does not exist: give an existing "
        "directory"
    )
    assert not paths.cluster_dir(cid).exists()  # no controller was started
    afile = tmp_path / "a-file"
    afile.write_text("")
    result = run_par("start", "-n", "1", "--cluster-id", cid, "--work-dir", str(afile))
    assert "is not a directory" in stderr_line(result)


def test_an_engine_started_by_hand_refuses_a_missing_work_dir(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    for command in (
        par_cli("engine", "--file", str(tmp_path / "c.json"), "--work-dir", str(gone)),
        [sys.executable, "-m", "par.engine", "--file", "c.json", "--work-dir", str(gone)],
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert stderr_line(result) == (
            f"par engine: --work-dir {gone}: No such file or directory; give an existing directory"
        )


def test_profile_names_the_cluster_on_every_command() -> None:
    started = run_par("start", "-n", "1", "--daemonize", "--profile", "flags-prof", "--log-to-file")
    assert started.returncode == 0, started.stderr
    try:
        assert "cluster 'flags-prof' is up with 1 engine " in started.stdout
        grown = run_par("engines", "-n", "1", "--profile", "flags-prof", "--log-to-file")
        assert grown.returncode == 0, grown.stderr
        with par.Client(profile="flags-prof") as rc:
            rc.wait_for_engines(2, timeout=60)
            assert rc.profile == "flags-prof"
        # what par start and par engines always do: the processes log to files
        logs = sorted(p.name for p in (paths.cluster_dir("flags-prof") / "logs").iterdir())
        assert "controller.log" in logs and any(n.startswith("engine-") for n in logs)
        both = run_par("start", "-n", "1", "--cluster-id", "a", "--profile", "b")
        assert stderr_line(both) == (
            "par start: error: --cluster-id a and --profile b name two clusters (a profile "
            "is a cluster id in par): give one"
        )
    finally:
        pids = cluster_pids("flags-prof")
        stopped = run_par("stop", "--profile", "flags-prof")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped cluster 'flags-prof'" in stopped.stdout
    assert wait_gone(pids) == []


def crash(cluster_id: str) -> Path:
    """Start a cluster with a task database, kill its controller, stop it: return where
    its database and logs were kept."""
    started = run_par(
        "start", "-n", "1", "--daemonize", "--db", "sqlite", "--cluster-id", cluster_id
    )
    assert started.returncode == 0, started.stderr
    pid = int(json.loads(paths.connection_file(cluster_id).read_text())["controller_pid"])
    os.kill(pid, signal.SIGKILL)
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    stopped = run_par("stop", "--cluster-id", cluster_id)
    assert stopped.returncode == 0, stopped.stderr
    return Path(stopped.stdout.rsplit(" is kept in ", 1)[1].strip())


def test_clean_logs_deletes_the_cluster_s_old_logs_and_nothing_else() -> None:
    kept = crash("flags-clean")
    other = crash("flags-clean-x")  # its name begins with the other's: its logs stay
    assert (kept / "logs").is_dir() and (kept / "events.jsonl").exists()
    started = run_par(
        "start", "-n", "1", "--daemonize", "--cluster-id", "flags-clean", "--clean-logs"
    )
    assert started.returncode == 0, started.stderr
    try:
        assert f"deleted the old logs of cluster 'flags-clean' in {kept}" in started.stderr
        assert sorted(p.name for p in kept.iterdir()) == [
            "records.sqlite", "records.sqlite-shm", "records.sqlite-wal"
        ]  # fmt: skip
        assert (other / "logs").is_dir() and (other / "records.sqlite").exists()
        assert (paths.cluster_dir("flags-clean") / "logs" / "controller.log").exists()
    finally:
        run_par("stop", "--cluster-id", "flags-clean")
    # the logs are cleaned first, so a start that then fails (nothing to restore) says so too
    again = run_par("start", "--cluster-id", "flags-clean", "--clean-logs", "--restore")
    assert "no old logs of cluster 'flags-clean' to delete" in again.stderr


def test_log_to_file_moves_a_controller_and_an_engine_run_by_hand_off_the_terminal() -> None:
    cid = "flags-logs"
    log_dir = paths.cluster_dir(cid) / "logs"
    with by_hand(cid, 0, "--log-to-file") as cluster:
        assert "par controller: cluster 'flags-logs' is up" in cluster.banner  # stdout stays
        engine = subprocess.Popen(
            par_cli(*cluster.engine_command[1:], "--log-to-file"),
            stderr=subprocess.PIPE,
            text=True,
        )
        cluster.engines.append(engine)
        with par.Client(cluster_id=cid) as rc:
            rc.wait_for_engines(1, timeout=60)
        engine_log = log_dir / f"engine-{engine.pid}.log"
        wait_for_file(engine_log)
        assert "connecting to" in engine_log.read_text()
        assert "engine 0 registering" in (log_dir / "controller.log").read_text()
        assert {p.stat().st_mode & 0o777 for p in log_dir.iterdir()} == {0o600}
        engine.terminate()
        assert engine.stderr is not None
        assert engine.stderr.read() == f"par engine: logging to {engine_log}\n"
        engine.wait()
