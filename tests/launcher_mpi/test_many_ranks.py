"""More ranks than cores: oversubscribed jobs and a registration burst of a hundred-odd ranks."""

from __future__ import annotations

import os

import par

from .conftest import assert_no_leftovers


def barriers_then_allreduce(n: int) -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    for _ in range(n):
        comm.Barrier()
    return comm.allreduce(comm.Get_rank())


def test_eight_ranks_on_two_cores_oversubscribed() -> None:
    assert (os.cpu_count() or 1) <= 8
    with par.Cluster(engines="mpi", n=8) as rc:
        assert rc.ids == list(range(8))
        assert rc[:].apply_sync(barriers_then_allreduce, 100) == [28] * 8
    assert_no_leftovers()


def test_a_burst_of_128_ranks_all_register() -> None:
    n = 128
    with par.Cluster(engines="mpi", n=n, engine_timeout=240) as rc:
        assert rc.ids == list(range(n))
        assert rc[:].apply_sync(barriers_then_allreduce, 1) == [n * (n - 1) // 2] * n
    assert_no_leftovers(timeout=20)
