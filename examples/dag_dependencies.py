"""Run a small DAG of tasks on a load-balanced view, each starting after its parents.

    load("a") ─> summarize("a") ──┐
                                  ├─> report
    load("b") ─> summarize("b") ──┘

``follow`` sends each summarize to the engine that loaded its data (a location
dependency); ``after`` starts the report only once both summaries are done (a
time dependency).

Run: python examples/dag_dependencies.py
"""

from __future__ import annotations

import par


def load(name: str) -> int:
    """Load a dataset into this engine's namespace; return the engine's pid."""
    import os
    import time

    time.sleep(0.2)
    globals()[f"data_{name}"] = list(range(10)) if name == "a" else list(range(10, 20))
    return os.getpid()


def summarize(name: str) -> tuple[int, int]:
    """Sum the dataset ``load`` left on this engine."""
    import os

    return os.getpid(), sum(globals()[f"data_{name}"])


def report(*sums: int) -> str:
    """Combine the summaries."""
    return f"total is {sum(sums)}"


def main() -> str:
    """Build the DAG with ``follow`` and ``after`` and return the report."""
    with par.Cluster(n=4) as rc:
        lv = rc.load_balanced_view()
        loads = {name: lv.apply_async(load, name) for name in "ab"}
        summaries = {}
        for name, ar in loads.items():
            with lv.temp_flags(follow=[ar]):
                summaries[name] = lv.apply_async(summarize, name)
        with lv.temp_flags(after=par.Dependency(list(summaries.values()), all=True)):
            done = lv.apply_async(lambda: "both summaries are done")
        print(done.get())
        for name in "ab":
            pid, _ = summaries[name].get()
            assert pid == loads[name].get(), "summarize ran where its data was loaded"
        for ar in summaries.values():
            assert ar.completed <= done.started, "after: the report started after its parents"
        text = report(*(s.get()[1] for s in summaries.values()))
        print(text)
        return text


if __name__ == "__main__":
    main()
