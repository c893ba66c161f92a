"""joblib.Parallel running on par engines.

Run: python examples/joblib_example.py  (needs joblib: pip install joblib)
"""

from __future__ import annotations

import math

import joblib
import par


def slow_sqrt(x: float) -> float:
    """A square root that takes a little while."""
    import time

    time.sleep(0.01)
    return math.sqrt(x)


def main() -> list[float]:
    """Compute square roots with joblib on a par cluster."""
    with par.Cluster(n=4) as rc:
        par.register_joblib_backend()
        view = rc.load_balanced_view()
        with joblib.parallel_config(backend="par", view=view):
            roots = joblib.Parallel()(joblib.delayed(slow_sqrt)(i) for i in range(50))
        print(f"{len(roots)} roots on {len(view)} engines; sqrt(49) = {roots[49]}")
        return roots


if __name__ == "__main__":
    main()
