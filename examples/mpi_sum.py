"""A parallel sum over MPI ranks, driven from par: ``python examples/mpi_sum.py --ranks 4``.

par scatters the numbers to the engines (each one an MPI rank), every rank
adds up its part, and ``MPI.COMM_WORLD.allreduce`` combines the parts
between the ranks themselves, without passing through the client.
"""

from __future__ import annotations

import argparse

import numpy as np
import par


def rank_sum() -> tuple[int, int]:
    """On an engine: this rank's number and the sum over all ranks of their parts."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    return comm.Get_rank(), comm.allreduce(int(part.sum()))  # noqa: F821 - scattered by par


def main() -> None:
    """Start an MPI cluster, sum 0..n-1 across its ranks, print the result, stop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=4, help="number of MPI engines")
    parser.add_argument("--n", type=int, default=1_000_000, help="sum the numbers 0..n-1")
    args = parser.parse_args()
    with par.Cluster(engines="mpi", n=args.ranks) as rc:
        dv = rc[:]
        dv.scatter("part", np.arange(args.n, dtype=np.int64), block=True)
        results = dv.apply_sync(rank_sum)
    ranks = [rank for rank, _ in results]
    totals = {total for _, total in results}
    assert ranks == list(range(args.ranks)) and len(totals) == 1, results
    print(f"sum of 0..{args.n - 1} over {args.ranks} MPI ranks: {totals.pop()}")


if __name__ == "__main__":
    main()
