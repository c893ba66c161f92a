"""Stopping an MPI job leaves nothing behind: par stop, a crashed rank, the context manager."""

from __future__ import annotations

import json
import os
import signal
import time

import par
import pytest

from ..conftest import run_par
from .conftest import assert_no_leftovers


def getpid() -> int:
    return os.getpid()


def test_killing_one_rank_fails_tasks_reports_the_rank_and_stops_cleanly() -> None:
    cluster = par.Cluster(engines="mpi", n=4)
    try:
        rc = cluster.start_and_connect_sync()
        pids = rc[:].apply_sync(getpid)
        ar = rc[:].apply_async(time.sleep, 60)
        time.sleep(0.5)
        os.kill(pids[1], signal.SIGKILL)
        with pytest.raises(par.CompositeError) as err:
            ar.get(timeout=30)
        assert "EngineError" in str(err.value)
        (engines,) = cluster.engines.values()
        deadline = time.monotonic() + 20
        while engines.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not engines.running(), "mpiexec should end the job when a rank dies"
        report = engines.output(5)
        assert f"rank 1 (pid {pids[1]}" in report
        assert "killed by signal 9 (SIGKILL)" in report
        assert "registered as engine 1" in report  # the rank's own last lines
    finally:
        cluster.stop_cluster_sync()
    assert_no_leftovers()


def test_a_killed_rank_ends_its_job_every_time() -> None:
    """A watcher that closed the rank's PMI socket only as it exited let MPICH miss about
    one killed rank in four and leave the others running: kill one in each of five jobs."""
    for attempt in range(5):
        with par.Cluster(engines="mpi", n=2) as rc:
            pids = rc[:].apply_sync(getpid)
            held = rc[:].apply_async(time.sleep, 60)
            time.sleep(0.2)
            os.kill(pids[attempt % 2], signal.SIGKILL)
            with pytest.raises(par.CompositeError):
                held.get(timeout=30)
    assert_no_leftovers()


def test_context_manager_exit_ends_the_job() -> None:
    with par.Cluster(engines="mpi", n=2) as rc:
        assert rc[:].apply_sync(getpid) != []
    assert_no_leftovers()


def test_cli_start_add_mpi_set_and_stop_leave_no_mpi_process() -> None:
    cid = "mpi-cli"
    start = run_par("start", "--launcher", "mpi", "-n", "3", "--cluster-id", cid, "--daemonize")
    try:
        assert start.returncode == 0, start.stderr
        assert "is up with 3 engines" in start.stdout
        added = run_par("engines", "--launcher", "mpi", "-n", "2", "--cluster-id", cid)
        assert added.returncode == 0, added.stderr
        assert "now has 5 engines" in added.stdout
        listed = json.loads(run_par("list", "-o", "json").stdout)
        (row,) = [r for r in listed if r["cluster_id"] == cid]
        assert (row["status"], row["engines"], row["launcher"]) == ("running", 5, "mpi")
        with par.Client(cluster_id=cid) as rc:
            rc.wait_for_engines(5, timeout=30)
            infos = rc.engines()
            # Two sets, each with ids in its own rank order.
            assert [(infos[i]["info"]["rank"], infos[i]["info"]["size"]) for i in rc.ids] == [
                (0, 3),
                (1, 3),
                (2, 3),
                (0, 2),
                (1, 2),
            ]
            assert rc[:].apply_sync(allreduce_size) == [3, 3, 3, 2, 2]
    finally:
        stop = run_par("stop", "--cluster-id", cid)
    assert stop.returncode == 0, stop.stderr
    assert_no_leftovers()


def allreduce_size() -> int:
    from mpi4py import MPI

    return MPI.COMM_WORLD.allreduce(1)
