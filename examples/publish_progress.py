"""Watch long-running tasks report their progress while they run.

Each engine relaxes a 1-D heat profile step by step and publishes how far it
got with ``par.datapub.publish_data``; the client polls ``ar.data`` (the
latest values each engine published) until the tasks finish.

Run: python examples/publish_progress.py  (starts and stops its own 2-engine cluster)
"""

from __future__ import annotations

import time

import par


def relax(steps: int, size: int = 200) -> float:
    """Smooth a spike by averaging neighbours ``steps`` times, publishing progress."""
    import time

    import numpy as np
    from par.datapub import publish_data

    field = np.zeros(size)
    field[size // 2] = 100.0
    for step in range(1, steps + 1):
        field[1:-1] = (field[:-2] + field[1:-1] + field[2:]) / 3.0
        if step % 10 == 0:  # publish now and then: the client sees the latest values
            publish_data({"step": step, "of": steps, "peak": float(field.max())})
            time.sleep(0.02)  # stands in for real work per step
    return float(field.max())


def main(steps: int = 300) -> list[float]:
    """Run ``relax`` on every engine, printing each engine's published progress meanwhile."""
    with par.Cluster(n=2) as rc:
        ar = rc[:].apply_async(relax, steps)
        seen: list[str] = []
        while not ar.ready():
            report = "  ".join(
                f"engine {md['engine_id']}: step {md['data'].get('step', 0)}/{steps}"
                for md in ar.metadata
            )
            if report != (seen[-1] if seen else ""):
                print(report)
                seen.append(report)
            time.sleep(0.1)
        peaks = ar.get()
        print(f"done: peaks {[round(p, 2) for p in peaks]}, last published {ar.data}")
        assert all(d["step"] == steps for d in ar.data), "the last publication arrived"
        return peaks


if __name__ == "__main__":
    main()
