"""The `par` command, run as a user runs it, in subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import par
import psutil
import pytest
from par import paths
from par.testing import wait_gone

from ..conftest import cluster_pids, par_cli, run_par


def foreground_start(cluster_id: str, n: int) -> subprocess.Popen[str]:
    """`par start` of ``n`` engines in the foreground, its output piped."""
    return subprocess.Popen(
        par_cli("start", "-n", str(n), "--cluster-id", cluster_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "command",
    [
        "",
        "start",
        "stop",
        "list",
        "clean",
        "engines",
        "controller",
        "engine",
        "launchers",
        "monitor",
    ],
)
def test_every_command_has_help(command: str) -> None:
    args = [command, "--help"] if command else ["--help"]
    result = run_par(*args)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()


def test_unknown_command_is_a_one_line_error() -> None:
    result = run_par("strat")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "unknown command 'strat'" in result.stderr


def test_unknown_launcher_lists_the_installed_ones() -> None:
    result = run_par("start", "--launcher", "nope", "-n", "1")
    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert "unknown engine launcher 'nope'" in line
    assert "installed: " in line and "local" in line


def test_stop_without_a_running_cluster_says_so_and_how_to_start_one(tmp_path: Path) -> None:
    result = subprocess.run(
        par_cli("stop", "--cluster-id", "not-running"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PAR_HOME": str(tmp_path)},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"par stop: error: no cluster 'not-running' is running "
        f"(nor any other in {tmp_path}; `par start` starts one)"
    )


def test_help_gives_every_default_and_describes_every_option() -> None:
    start = " ".join(run_par("start", "--help").stdout.split())
    assert "name of the cluster (default: default)" in start
    assert "seconds to wait for engines to register (default: 60.0)" in start
    listing = " ".join(run_par("list", "--help").stdout.split())
    assert "--output {text,json} a table (text, the default) or JSON for scripts" in listing


def test_client_without_a_cluster_or_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(
        par.ClusterError, match=r"no cluster 'ghost' is running: start one with `par start"
    ):
        par.Client(cluster_id="ghost")
    with pytest.raises(par.ClusterError, match="not found: start a cluster with `par start`"):
        par.Client(tmp_path / "missing.json", timeout=0.2)


def test_engines_command_without_a_cluster_fails_cleanly() -> None:
    result = run_par("engines", "-n", "1", "--cluster-id", "absent")
    assert result.returncode == 1
    assert "no cluster 'absent' is running" in result.stderr


def test_daemonized_cluster_can_be_listed_grown_and_stopped() -> None:
    result = run_par("start", "-n", "2", "--daemonize", "--cluster-id", "cli-d")
    assert result.returncode == 0, result.stderr
    assert "is up with 2 engines" in result.stdout
    assert "par.Client(cluster_id='cli-d')" in result.stdout
    conn = paths.connection_file("cli-d")
    assert conn.stat().st_mode & 0o777 == 0o600
    assert paths.cluster_file("cli-d").stat().st_mode & 0o777 == 0o600
    logs = paths.cluster_dir("cli-d") / "logs"  # what tasks print is the user's data
    assert logs.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in logs.iterdir()} == {0o600}
    try:
        listing = run_par("list")
        assert any(
            line.split()[:3] == ["cli-d", "running", "2"] for line in listing.stdout.splitlines()
        ), listing.stdout
        grown = run_par("engines", "-n", "1", "--cluster-id", "cli-d")
        assert grown.returncode == 0, grown.stderr
        assert "now has 3 engines" in grown.stdout
        with par.Client(cluster_id="cli-d") as rc:
            rc.wait_for_engines(3, timeout=30)
            assert rc.ids == [0, 1, 2]
            assert rc[:].apply_sync(lambda: 1) == [1, 1, 1]
        pids = cluster_pids("cli-d")
        assert len(pids) == 4
    finally:
        stopped = run_par("stop", "--cluster-id", "cli-d")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_gone(pids) == []
    assert not paths.cluster_dir("cli-d").exists()
    assert "cli-d" not in run_par("list").stdout


def test_second_start_of_the_same_cluster_is_refused() -> None:
    assert run_par("start", "-n", "1", "--daemonize", "--cluster-id", "cli-twice").returncode == 0
    try:
        again = run_par("start", "-n", "1", "--daemonize", "--cluster-id", "cli-twice")
        assert again.returncode == 1
        assert "already running" in again.stderr
    finally:
        pids = cluster_pids("cli-twice")
        run_par("stop", "--cluster-id", "cli-twice")
    assert wait_gone(pids) == []


@pytest.mark.parametrize(
    ("signals", "at_once"),
    [
        ([signal.SIGINT], False),
        ([signal.SIGINT, signal.SIGINT], False),
        ([signal.SIGTERM, signal.SIGTERM], False),
        ([signal.SIGINT, signal.SIGINT], True),
    ],
    ids=["ctrl-c", "ctrl-c twice", "sigterm twice", "ctrl-c twice at once"],
)
def test_ctrl_c_on_a_foreground_start_leaves_no_process(
    signals: list[signal.Signals], at_once: bool
) -> None:
    """A second signal while the cluster stops (a double Ctrl-C, or `timeout` signalling
    both `uv run` and its process group) must not cut the stop short, even one that
    comes before the stop has begun (`uv run` passing on a Ctrl-C its child had too)."""
    proc = foreground_start("cli-fg", 2)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert "is up with 2 engines" in line, proc.stderr.read()
        pids = cluster_pids("cli-fg")
        first, *more = signals
        proc.send_signal(first)
        while more and not at_once and "stopping the cluster" not in proc.stderr.readline():
            pass
        for sig in more:
            if at_once:  # after the first's KeyboardInterrupt is raised, before the stop
                time.sleep(0.0002)
            proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_gone([*pids, proc.pid]) == []
    assert not paths.cluster_dir("cli-fg").exists()


def test_a_foreground_start_whose_controller_dies_cleans_up_and_ends() -> None:
    proc = foreground_start("cli-died", 1)
    try:
        assert proc.stdout is not None
        assert "is up with 1 engine " in proc.stdout.readline()
        pids = cluster_pids("cli-died")
        os.kill(pids[0], signal.SIGKILL)  # the controller, a child of `par start`
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "the controller has stopped; cleaning up" in err
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_gone([*pids, proc.pid]) == []
    assert not paths.cluster_dir("cli-died").exists()


def test_stop_all_stops_every_cluster() -> None:
    for cid in ("cli-a1", "cli-a2"):
        assert run_par("start", "-n", "1", "--daemonize", "--cluster-id", cid).returncode == 0
    pids = cluster_pids("cli-a1") + cluster_pids("cli-a2")
    result = run_par("stop", "--all")
    assert result.returncode == 0, result.stderr
    assert "stopped cluster 'cli-a1'" in result.stdout
    assert wait_gone(pids) == []


def test_launchers_lists_the_local_plugin() -> None:
    result = run_par("launchers")
    assert result.returncode == 0
    rows = [line.split()[:3] for line in result.stdout.splitlines()[1:]]
    assert ["local", "controller", "par-launcher-local"] in rows
    assert ["local", "engines", "par-launcher-local"] in rows


def test_controller_refuses_a_bad_cluster_id() -> None:
    result = run_par("controller", "--cluster-id", "../escape")
    assert result.returncode == 1
    assert "invalid cluster id" in result.stderr


def test_controller_refuses_a_max_message_size_too_small_for_a_header(tmp_path) -> None:
    result = run_par("controller", "--max-message-bytes", "5", "--file", str(tmp_path / "c.json"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "par controller: error: --max-message-bytes 5 is too small: a message's header alone "
        "may take 16777216 bytes; give at least that"
    )
    assert not (tmp_path / "c.json").exists()


def test_controller_refuses_an_owner_that_is_no_process(tmp_path) -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()  # reaped: no process has its pid any more
    pid = ended.pid
    result = run_par("controller", "--owner", str(pid), "--file", str(tmp_path / "c.json"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"par controller: error: --owner {pid}: no process has that pid; give the pid of a "
        "running process, or leave --owner out"
    )
    assert not (tmp_path / "c.json").exists()


def test_no_par_process_outlives_the_tests_of_this_module() -> None:
    home = os.environ["PAR_HOME"]
    leftovers = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            env = proc.info["environ"] or {}
        except psutil.Error:
            continue
        ours = ("par.engine" in cmd or "par.controller" in cmd) and env.get("PAR_HOME") == home
        if ours and "cli-" in cmd:
            leftovers.append((proc.pid, cmd))
    assert not leftovers


def test_start_passes_the_scheme_to_the_controller() -> None:
    result = run_par(
        "start", "-n", "1", "--daemonize", "--scheme", "lru", "--cluster-id", "cli-scheme"
    )
    assert result.returncode == 0, result.stderr
    try:
        with par.Client(cluster_id="cli-scheme") as rc:
            assert rc.load_balanced_view().map_sync(abs, [-1, -2]) == [1, 2]
        pids = cluster_pids("cli-scheme")
        cmd = psutil.Process(pids[0]).cmdline()
        assert cmd[cmd.index("--scheme") + 1] == "lru"
    finally:
        run_par("stop", "--cluster-id", "cli-scheme")
    bad = run_par("start", "-n", "1", "--daemonize", "--scheme", "nope", "--cluster-id", "cli-bad")
    assert bad.returncode == 2  # refused before anything starts, naming every scheme
    assert "invalid choice: 'nope'" in bad.stderr and "'twobin'" in bad.stderr
    assert "'none'" in bad.stderr
