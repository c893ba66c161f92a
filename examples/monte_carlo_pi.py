"""Estimate pi by throwing darts on every engine, then combining the counts.

Run: python examples/monte_carlo_pi.py  (starts and stops its own 4-engine cluster)
"""

from __future__ import annotations

import par


def darts_in_circle(n: int) -> int:
    """How many of ``n`` random points in the unit square fall inside the quarter circle."""
    import random

    hits = 0
    for _ in range(n):
        x, y = random.random(), random.random()
        hits += x * x + y * y <= 1.0
    return hits


def main(per_engine: int = 200_000) -> float:
    """Throw ``per_engine`` darts on each engine and return the estimate of pi."""
    with par.Cluster(n=4) as rc:
        dv = rc[:]
        ar = dv.apply_async(darts_in_circle, per_engine)
        hits = ar.get()
        estimate = 4.0 * sum(hits) / (per_engine * len(hits))
        print(f"{len(hits)} engines, {per_engine * len(hits)} darts: pi ~ {estimate:.4f}")
        print(f"wall time {ar.wall_time:.2f} s, engines' compute time {ar.serial_time:.2f} s")
        return estimate


if __name__ == "__main__":
    main()
