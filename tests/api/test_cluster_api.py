"""ipyparallel's Cluster methods on par's Cluster, with real controllers and engines:
the cluster file kept by hand, and the directory engines work in."""

from __future__ import annotations

import json
import os
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
