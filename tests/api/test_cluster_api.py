"""ipyparallel's Cluster methods on par's Cluster, with real controllers and engines:
the cluster file kept by hand, and the directory engines work in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import par
import pytest
from par import paths
from par.testing import wait_gone

from ..conftest import cluster_pids, run_par


def test_update_cluster_file_writes_it_while_the_cluster_runs_and_removes_it_after() -> None:
    cluster = par.Cluster(n=1, cluster_id="api-cfile")
    cluster.start_and_connect_sync()
    path = paths.cluster_file("api-cfile")
    try:
        pids = cluster_pids("api-cfile")
        cluster.remove_cluster_file()
        assert not path.exists()
        cluster.remove_cluster_file()  # already gone: nothing to do, as in ipyparallel
        (row,) = [
            r
            for r in json.loads(run_par("list", "-o", "json").stdout)
            if r["cluster_id"] == "api-cfile"
        ]
        assert row["status"] == "running" and row["launcher"] == "by hand"  # its file is gone
        cluster.update_cluster_file()  # it runs: the file is written again
        assert par.Cluster.from_file("api-cfile").engines_running() == 1
        assert cluster_pids("api-cfile") == pids
    finally:
        cluster.stop_cluster_sync()
    assert wait_gone(pids) == []
    cluster.write_cluster_file()
    cluster.update_cluster_file()  # nothing of it runs: the file goes
    assert not path.exists()
    paths.remove_cluster_dir("api-cfile")


def test_a_cluster_s_work_dir_holds_for_every_engine_set_and_survives_its_file(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    cluster = par.Cluster(n=1, cluster_id="api-wd", work_dir=str(tmp_path))
    rc = cluster.start_and_connect_sync()
    try:
        loaded = par.Cluster.from_file("api-wd")  # as `par engines` and `par stop` see it
        assert loaded.work_dir == str(tmp_path)
        loaded.add_engines(1)
        loaded.add_engines(1, work_dir=str(other))
        rc.wait_for_engines(3, timeout=60)
        here, there = str(tmp_path.resolve()), str(other.resolve())
        assert rc[:].apply_sync(os.getcwd) == [here, here, there]
        par.Cluster.from_file("api-wd").restart_engines_sync()  # each set keeps its own
        deadline = time.monotonic() + 60
        while sorted(rc.ids) != [3, 4, 5] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(rc[:].apply_sync(os.getcwd)) == [here, here, there]
        with pytest.raises(ValueError, match="work dir '/nowhere/at/all' does not exist"):
            loaded.add_engines(1, work_dir="/nowhere/at/all")
    finally:
        cluster.stop_cluster_sync()


_SCRIPT = """
import json, os, sys
import par

# No reference to the cluster is kept: it is stopped at exit all the same.
cid, stop = sys.argv[1], sys.argv[2] == "1"
rc = par.Cluster(n=2, cluster_id=cid, shutdown_atexit=stop).start_and_connect_sync()
print(json.dumps([rc.status()["pid"], *rc[:].apply_sync(os.getpid)]), flush=True)
raise RuntimeError("the script fails before it stops its cluster")
"""


@pytest.mark.parametrize("shutdown_atexit", [True, False])
def test_a_script_s_cluster_stops_when_the_script_exits_unless_told_otherwise(
    tmp_path: Path, shutdown_atexit: bool
) -> None:
    """As ipyparallel's ``shutdown_atexit``: a script that started a cluster and ended
    without stopping it (here by an error) leaves no process; with False, the cluster
    runs on, and another process finds it and stops it (a cluster so found is not its
    to stop at exit)."""
    script = tmp_path / "script.py"
    script.write_text(_SCRIPT)
    cid = f"atexit-{int(shutdown_atexit)}-{os.getpid()}"
    proc = subprocess.run(
        [sys.executable, str(script), cid, str(int(shutdown_atexit))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "the script fails" in proc.stderr, proc.stderr[-2000:]
    pids = json.loads(proc.stdout.splitlines()[-1])
    try:
        if shutdown_atexit:
            assert wait_gone(pids) == []
            assert not paths.cluster_dir(cid).exists()
        else:
            assert wait_gone(pids, timeout=1) == pids
            assert par.Cluster.from_file(cid).shutdown_atexit is False
    finally:
        run_par("stop", "--cluster-id", cid)
    assert wait_gone(pids) == []


_KILLED_SCRIPT = """
import json, os, signal, sys, time
import par, psutil

signal.signal(signal.SIGHUP, signal.SIG_DFL)  # as in a terminal: the tests may run under nohup
cid, stop = sys.argv[1], sys.argv[2] == "1"
rc = par.Cluster(n=2, cluster_id=cid, shutdown_atexit=stop).start_and_connect_sync()
hub = psutil.Process(rc.status()["pid"])
engines = rc[:].apply_sync(os.getpid)
forker = psutil.Process(engines[0]).ppid()  # the fork server
print(json.dumps([hub.pid, *(p.pid for p in hub.children()), *engines, forker]), flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize(
    ("how", "shutdown_atexit"),
    [("SIGTERM", True), ("SIGKILL", True), ("SIGHUP", True), ("SIGKILL", False)],
)
def test_a_script_killed_by_a_signal_leaves_no_process_unless_told_otherwise(
    tmp_path: Path, how: str, shutdown_atexit: bool
) -> None:
    """A script killed by a signal runs no exit handler (``timeout``'s or a batch system's
    SIGTERM, a closed terminal's SIGHUP, SIGKILL): its controller sees the process that
    started the cluster end, and stops the engines (fork server, relays and all) and
    itself; its log says why, and `par list` shows the cluster stale. With
    ``shutdown_atexit=False`` the cluster runs on."""
    script = tmp_path / "script.py"
    script.write_text(_KILLED_SCRIPT)
    cid = f"killed-{how.lower()}-{int(shutdown_atexit)}-{os.getpid()}"
    proc = subprocess.Popen(
        [sys.executable, str(script), cid, str(int(shutdown_atexit))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 6  # hub, two relays, two engines, the fork server
        proc.send_signal(getattr(signal, how))
        proc.wait(30)
        if shutdown_atexit:
            assert wait_gone(pids) == []
            log = (paths.log_dir(cid) / "controller.log").read_text()
            assert f"the process that started this cluster (pid {proc.pid}) ended" in log
            listed = json.loads(run_par("list", "-o", "json").stdout)
            assert [r["status"] for r in listed if r["cluster_id"] == cid] == ["stale"]
        else:
            assert wait_gone(pids, timeout=3) == pids
    finally:
        proc.kill()
        run_par("stop", "--cluster-id", cid)
    assert wait_gone(pids) == []


def test_ipyparallel_s_names_for_a_cluster_s_settings_are_taken() -> None:
    """profile names the cluster (par has no profiles); engine_launcher_class,
    controller_launcher_class, controller_ip and controller_location are par's engines,
    controller, ip and location; the same setting given two ways is refused."""
    cid = f"ipp-names-{os.getpid()}"
    cluster = par.Cluster(
        n=1,
        profile=cid,
        engine_launcher_class="Local",
        controller_launcher_class="local",
        controller_ip="127.0.0.1",
    )
    assert cluster.cluster_id == cid and cluster.controller_options["ip"] == "127.0.0.1"
    with cluster as rc:
        assert rc[:].apply_sync(lambda: "ran") == ["ran"]
        urls = json.loads(paths.connection_file(cid).read_text())
        assert urls["engine_url"].startswith("tcp://127.0.0.1:")
    refused = [
        ({"profile": "a", "cluster_id": "b"}, ValueError, "no profiles"),
        ({"engines": "ssh", "engine_launcher_class": "mpi"}, TypeError, "two launchers"),
        ({"engine_launcher_class": object}, TypeError, "launcher's name"),
        ({"ip": "10.0.0.1", "controller_ip": "127.0.0.1"}, TypeError, "one option"),
    ]
    for kwargs, error, words in refused:
        with pytest.raises(error, match=words):
            par.Cluster(n=1, **kwargs)
