"""A cluster started by hand: `par controller` on one terminal, `par engine --file` from the
line it prints on others, then the commands that manage clusters, each run as a user runs
it (in subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import par
import pytest
from par import paths
from par.testing import wait_gone

from ..conftest import ByHand, by_hand, par_cli, run_par

FAST = ("--heartbeat", "0.2", "--heartbeat-timeout", "1.5")


def listed(cluster_id: str) -> dict[str, object]:
    rows = json.loads(run_par("list", "-o", "json").stdout)
    (row,) = [r for r in rows if r["cluster_id"] == cluster_id]
    return row


def test_the_controller_says_where_its_file_is_and_how_to_start_engines() -> None:
    with by_hand("hand-banner", 0) as cluster:
        conn = paths.connection_file("hand-banner")
        assert cluster.banner.splitlines() == [
            f"par controller: cluster 'hand-banner' is up; connection file: {conn}",
            f"  engines:  par engine --file {conn}   (engines on this machine only; for "
            "others give --ip 0.0.0.0 --location HOST)",
            "  connect:  python -c \"import par; rc = par.Client(cluster_id='hand-banner'); "
            'print(rc.ids)"',
            "  stop:     Ctrl-C here, or `par stop --cluster-id hand-banner`",
        ]
        cluster.start_engine()  # the line it printed works
        with par.Client(cluster_id="hand-banner") as rc:
            rc.wait_for_engines(1, timeout=60)
            assert rc[:].apply_sync(lambda: 7) == [7]


def test_list_counts_the_engines_registered_not_launched() -> None:
    with by_hand("hand-list", 2, *FAST) as cluster:
        assert listed("hand-list") == {
            "cluster_id": "hand-list",
            "status": "running",
            "engines": 2,  # no launcher started them: the controller counts them
            "launcher": "by hand",
        }
        cluster.engines[0].kill()
        with par.Client(cluster_id="hand-list") as rc:
            while len(rc.ids) > 1:
                rc.wait_for_engines(0, timeout=0.1)
        assert listed("hand-list")["engines"] == 1


def test_engines_adds_engines_to_a_cluster_started_by_hand() -> None:
    with by_hand("hand-grow", 1):
        grown = run_par("engines", "-n", "1", "--cluster-id", "hand-grow")
        assert grown.returncode == 0, grown.stderr
        assert "cluster 'hand-grow' now has 2 engines" in grown.stdout
        assert listed("hand-grow")["launcher"] == "by hand,local"
        cluster = par.Cluster.from_file("hand-grow")
        assert cluster.controller is None and cluster.controller_running()
        assert cluster.engines_registered() == 2
        set_id = cluster.add_engines(1)
        with par.Client(cluster_id="hand-grow") as rc:
            cluster.wait_for_engines_sync(rc, 3, sets=[set_id])
            assert len(rc[:].apply_sync(os.getpid)) == 3


def _launched(cluster_id: str) -> list[int]:
    """The pids of the engines the cluster file says its launchers started."""
    data = json.loads(paths.cluster_file(cluster_id).read_text())
    return [int(p["pid"]) for es in data["engines"].values() for p in es["state"]["processes"]]


@pytest.mark.parametrize("how", [["--cluster-id", "hand-stop"], ["--all"]])
def test_stop_ends_a_cluster_started_by_hand(how: list[str]) -> None:
    with by_hand("hand-stop", 1) as cluster:
        assert run_par("engines", "-n", "1", "--cluster-id", "hand-stop").returncode == 0
        launched = _launched("hand-stop")
        stopped = run_par("stop", *how)
        assert stopped.returncode == 0, stopped.stderr
        assert "par: stopped cluster 'hand-stop'" in stopped.stdout
        assert cluster.controller.wait(timeout=30) == 0  # stopped, not killed
        assert [proc.wait(timeout=30) for proc in cluster.engines] == [0]
        assert wait_gone(launched) == []
        assert not paths.cluster_dir("hand-stop").exists()


def test_clean_removes_what_nothing_serves_and_says_so() -> None:
    leftover = paths.cluster_dir("hand-leftover") / "logs"
    leftover.mkdir(parents=True)
    with by_hand("hand-live", 1), by_hand("hand-dead", 0) as dead:
        dead.controller.kill()  # its connection file stays: it looks crashed
        dead.controller.wait()
        assert listed("hand-dead")["status"] == "crashed"
        cleaned = run_par("clean")
        assert cleaned.returncode == 0, cleaned.stderr
        assert sorted(cleaned.stdout.splitlines()) == [
            "par: removed cluster 'hand-dead': its controller is gone (killed, or its machine "
            "restarted)",
            "par: removed cluster 'hand-leftover': it holds only leftover files (no cluster "
            "or connection file)",
        ]
        assert not paths.cluster_dir("hand-dead").exists()
        assert not paths.cluster_dir("hand-leftover").exists()
        assert listed("hand-live")["status"] == "running"  # left alone
        assert run_par("clean").stdout.strip() == "par: nothing to clean"


def test_clean_leaves_a_crashed_cluster_whose_engines_still_run() -> None:
    with by_hand("hand-orphans", 1) as cluster:
        cluster.controller.send_signal(signal.SIGKILL)
        cluster.controller.wait()
        cleaned = run_par("clean")
        assert cleaned.stdout.strip() == (
            "par: left cluster 'hand-orphans': its controller is gone but 1 engine process(es) "
            "still run: `par stop --cluster-id hand-orphans` ends it"
        )
        assert paths.connection_file("hand-orphans").exists()
        assert cluster.engines[0].poll() is None
        restore = run_par("start", "--restore", "--cluster-id", "hand-orphans")
        assert restore.returncode == 1
        assert restore.stderr.strip() == (
            "par start: error: cluster 'hand-orphans' was started by hand: restore its "
            "controller with `par controller --cluster-id hand-orphans --restore`"
        )


def test_a_controller_stopped_with_ctrl_c_leaves_no_entry() -> None:
    cluster = ByHand("hand-ctrl-c")
    try:
        cluster.controller.send_signal(signal.SIGINT)
        assert cluster.controller.wait(timeout=30) == 0
        assert "hand-ctrl-c" not in run_par("list").stdout
    finally:
        cluster.close()


@pytest.mark.parametrize("content", [None, "{garbled", '{"key": "00"}'])
def test_an_engine_given_a_missing_or_bad_file_fails_at_once(tmp_path, content) -> None:
    path = tmp_path / "connection.json"
    if content is not None:
        path.write_text(content)
    # the engine's registration timeout is 30 s: failing within 20 is failing at once
    result = subprocess.run(
        par_cli("engine", "--file", str(path)), capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"par engine: connection file {path} ")
    assert ("not found" if content is None else str(path)) in line
