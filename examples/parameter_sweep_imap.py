"""Sweep a parameter grid lazily with imap: the grid is generated as engines free up.

Run: python examples/parameter_sweep_imap.py
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import par


def simulate(rate: float, steps: int) -> tuple[float, int, float]:
    """A toy model: logistic growth with ``rate`` after ``steps`` steps."""
    x = 0.1
    for _ in range(steps):
        x = rate * x * (1 - x)
    return rate, steps, x


def grid() -> Iterator[tuple[float, int]]:
    """Parameter pairs, produced one at a time (it could be endless)."""
    rates = (2.5 + 0.1 * i for i in range(15))
    return itertools.product(rates, (10, 100, 1000))


def main() -> list[tuple[float, int, float]]:
    """Run the sweep and print the results as they arrive."""
    with par.Cluster(n=4) as rc:
        lv = rc.load_balanced_view()
        rates, steps = zip(*grid(), strict=True)
        results = []
        for rate, n, x in lv.imap(simulate, iter(rates), iter(steps), ordered=False):
            results.append((rate, n, x))
        best = max(results, key=lambda r: r[2])
        print(f"{len(results)} runs; largest final value {best[2]:.4f} at rate {best[0]:.1f}")

        # An endless input works too: stop when the answer is good enough.
        it = lv.imap(simulate, itertools.count(1), itertools.repeat(50), max_outstanding=8)
        for rate, _, x in it:
            if x == 0.0 or rate > 20:
                it.cancel()
                break
        print(f"endless sweep stopped at rate {rate}")
        return results


if __name__ == "__main__":
    main()
