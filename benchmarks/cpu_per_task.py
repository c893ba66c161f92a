"""CPU µs per task of each process (client, controller, engines) for no-op tasks.

``python benchmarks/cpu_per_task.py [--engines 2] [--map 100000] [--apply 20000] [--sync 5000]``

Wall-clock throughput on a shared machine moves with the load; the CPU a task
costs each process moves far less, so this is the figure to compare two versions
of par by. Uses only the public API, so it runs against any version.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import par
import psutil


def noop(*_args: object) -> None:
    """A task that does nothing."""


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        total += t.user + t.system
    return total


def measure(roles: dict[str, list[int]], n: int, run: Callable[[], None]) -> dict[str, float]:
    """Run ``run`` (n tasks): tasks/s and CPU µs per task of each role."""
    before = {role: _cpu(pids) for role, pids in roles.items()}
    t = time.perf_counter()
    run()
    wall = time.perf_counter() - t
    out = {"tasks_per_s": round(n / wall)}
    for role, pids in roles.items():
        out[f"{role}_us"] = round((_cpu(pids) - before[role]) / n * 1e6, 1)
    out["total_us"] = round(sum(out[f"{r}_us"] for r in roles), 1)
    return out


def main() -> None:
    """Start a cluster, run each phase, print one JSON line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--engines", type=int, default=2)
    p.add_argument("--map", type=int, default=100_000)
    p.add_argument("--apply", type=int, default=20_000)
    p.add_argument("--sync", type=int, default=5_000)
    p.add_argument("--label", default="")
    args = p.parse_args()
    cluster = par.Cluster(n=args.engines)
    rc = cluster.start_and_connect_sync()
    try:
        while len(rc.ids) < args.engines:
            time.sleep(0.01)
        controller = int(rc.status()["pid"])
        ctl = [controller, *(c.pid for c in psutil.Process(controller).children(recursive=True))]
        engines = list(rc[:].apply_sync(os.getpid))
        roles = {"client": [os.getpid()], "controller": ctl, "engines": engines}
        lv = rc.load_balanced_view()
        dv = rc[rc.ids[0]]
        lv.map_async(noop, range(2000), chunksize=1).get()
        for _ in range(200):
            dv.apply_sync(noop)
            lv.apply_sync(noop)
        out: dict[str, object] = {"label": args.label, "load": os.getloadavg()[0]}

        def sync(view: Any) -> Callable[[], None]:
            def run() -> None:
                for _ in range(args.sync):
                    view.apply_sync(noop)

            return run

        def apply_loop() -> None:
            ars = [lv.apply_async(noop, i) for i in range(args.apply)]
            rc.wait(ars)

        out["map"] = measure(
            roles, args.map, lambda: lv.map_async(noop, range(args.map), chunksize=1).get()
        )
        out["apply"] = measure(roles, args.apply, apply_loop)
        if args.sync:
            out["sync_direct"] = measure(roles, args.sync, sync(dv))
            out["sync_lb"] = measure(roles, args.sync, sync(lv))
        out["load_end"] = os.getloadavg()[0]
        print(json.dumps(out), flush=True)
    finally:
        cluster.stop_cluster_sync()


if __name__ == "__main__":
    main()
