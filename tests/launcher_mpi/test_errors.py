"""Clear errors: no mpiexec, no mpi4py, an mpi4py of another MPI, Open MPI's needs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import par
import pytest
from par.launcher import LauncherError

from .conftest import assert_no_leftovers

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


def test_open_mpi_gets_oversubscribe_and_root_variables_and_a_mismatch_is_named(
    tmp_path: Path,
) -> None:
    # A stand-in for Open MPI's mpirun: it answers --version as Open MPI does, records how
    # it was called, then runs MPICH's mpiexec (which knows no --oversubscribe).
    record = tmp_path / "called"
    fake = script(
        tmp_path / "mpirun",
        'if [ "$1" = --version ]; then echo "mpirun (Open MPI) 5.0.11"; exit 0; fi\n'
        f'echo "$* root=$OMPI_ALLOW_RUN_AS_ROOT/$OMPI_ALLOW_RUN_AS_ROOT_CONFIRM" > {record}\n'
        'for a; do shift; [ "$a" = --oversubscribe ] || set -- "$@" "$a"; done\n'
        f'exec {MPIEXEC} "$@"\n',
    )
    cluster = par.Cluster(engines="mpi", n=2, mpiexec=fake, mpi_args="-genv PAR_MPI_TEST yes")
    with pytest.raises(par.ClusterError) as err:
        cluster.start_and_connect_sync()
    called = record.read_text()
    assert called.startswith("-genv PAR_MPI_TEST yes --oversubscribe -n 2 sh -c")
    if os.geteuid() == 0:
        assert "root=1/1" in called
    assert "mpi4py uses 'MPICH Version: 5.0.2', but the mpiexec is from openmpi" in str(err.value)
    assert_no_leftovers()
