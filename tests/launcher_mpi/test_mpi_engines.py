"""Four engines as the ranks of one mpiexec job, used from a client as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import par
from par.testing import engine_pids, wait_gone
from par_launcher_mpi.mpiexec import family

from .conftest import MPI_FAMILY

EXAMPLES = Path(__file__).parents[2] / "examples"


def rank_and_size() -> tuple[int, int]:
    from mpi4py import MPI

    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


def allreduce_rank() -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    return comm.allreduce(comm.Get_rank())


def test_every_engine_gets_6_from_allreduce_of_ranks(rc: par.Client) -> None:
    assert rc[:].apply_sync(allreduce_rank) == [6, 6, 6, 6]


def test_engine_ids_follow_rank_order_and_engines_know_rank_and_size(rc: par.Client) -> None:
    assert rc.ids == [0, 1, 2, 3]
    assert rc[:].apply_sync(rank_and_size) == [(0, 4), (1, 4), (2, 4), (3, 4)]
    infos = rc.engines()
    assert [(infos[i]["info"]["rank"], infos[i]["info"]["size"]) for i in rc.ids] == [
        (0, 4),
        (1, 4),
        (2, 4),
        (3, 4),
    ]
    library = infos[0]["info"]["mpi"]
    assert family(library) == MPI_FAMILY
    assert library.isprintable()  # Open MPI's version text ends in a NUL the engine drops


def test_scatter_then_mpi_allreduce_then_gather(rc: par.Client) -> None:
    dv = rc[:]
    dv.scatter("x", np.arange(16.0), block=True)
    dv.execute(
        "from mpi4py import MPI\n"
        "total = MPI.COMM_WORLD.allreduce(float(x.sum()))\n"  # every rank: the sum of all parts
        "x = x / total",
        block=True,
    )
    assert dv.pull("total", block=True) == [120.0] * 4
    np.testing.assert_allclose(dv.gather("x", block=True), np.arange(16.0) / 120.0)


def heat_step_on_ranks(steps: int) -> list[float]:
    """The stencil of docs/mpi.md: 1-D heat equation, halo exchange with neighbours."""
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    left, right = (rank - 1) % size, (rank + 1) % size
    u = np.zeros(10 + 2)
    if rank == 0:
        u[1] = 100.0
    for _ in range(steps):
        comm.Sendrecv(u[1:2], dest=left, recvbuf=u[-1:], source=right)
        comm.Sendrecv(u[-2:-1], dest=right, recvbuf=u[0:1], source=left)
        u[1:-1] = u[1:-1] + 0.25 * (u[:-2] - 2 * u[1:-1] + u[2:])
    return list(u[1:-1])


def test_stencil_conserves_heat_across_ranks(rc: par.Client) -> None:
    parts = rc[:].apply_sync(heat_step_on_ranks, 50)
    u = np.concatenate(parts)
    assert abs(u.sum() - 100.0) < 1e-9
    assert u[0] < 100.0 and u[10] > 0.0  # heat crossed from rank 0 into rank 1


def test_example_mpi_sum_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "mpi_sum.py"), "--ranks", "3", "--n", "1000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "sum of 0..999 over 3 MPI ranks: 499500" in done.stdout


def test_ranks_run_in_the_cluster_s_work_dir(tmp_path: Path) -> None:
    """The work dir reaches engines in what the mpi launcher hands each rank."""
    cluster = par.Cluster(engines="mpi", n=2, work_dir=str(tmp_path))
    rc = cluster.start_and_connect_sync()
    pids = list(engine_pids(rc).values())
    try:
        assert rc[:].apply_sync(os.getcwd) == [str(tmp_path.resolve())] * 2
    finally:
        cluster.stop_cluster_sync()
    assert wait_gone(pids) == []
