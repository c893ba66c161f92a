"""Watch engines' output live while a long task runs, then show it grouped.

Run: python examples/streaming_output.py
"""

from __future__ import annotations

import par


def count_down(n: int) -> str:
    """Print a line every tenth of a second."""
    import time

    for i in range(n, 0, -1):
        print(f"{i}...", flush=True)
        time.sleep(0.1)
    return "lift-off"


def main() -> list[str]:
    """Stream output while waiting, then print each engine's output again."""
    with par.Cluster(n=2) as rc:
        dv = rc[:]
        ar = dv.apply_async(count_down, 5)
        with ar.stream_output():  # lines appear here as the engines print them
            ar.wait()
        print("--- grouped by engine ---")
        ar.display_outputs(groupby="engine")
        lv = rc.load_balanced_view()
        sweep = lv.map_async(count_down, [3] * 6)
        sweep.wait_interactive()  # a progress bar while waiting
        return list(ar.get())


if __name__ == "__main__":
    main()
