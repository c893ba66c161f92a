"""CPU an idle cluster costs, in ms a second, for each process and thread.

``python benchmarks/idle_cpu.py [--engines 8] [--seconds 30]``

A cluster waiting between a user's cells still wakes to beat and to look
at what is due, and every wake costs its process a cold start (more so
in a virtual machine). Summed over a thousand engines that is cores. This
reads each thread's run time from ``/proc/PID/task/TID/schedstat`` (the
scheduler's nanoseconds, not the 10 ms ticks ``ps`` counts) before and after
``--seconds`` of idleness, and prints one JSON line: ms of CPU a second for the
client (this process, with its I/O thread), the controller's processes and
each engine, and an engine's threads apart, with the times each went to sleep
a second (its wakes, which move far less with the machine's load than the
CPU each costs). Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import psutil


def run_times(pid: int) -> dict[str, tuple[int, int]]:
    """Nanoseconds each thread of process ``pid`` has run, and the times it went to sleep,
    by thread name and id."""
    out: dict[str, tuple[int, int]] = {}
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:  # the process ended
        return out
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                sleeps = next(
                    int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt")
                )
        except OSError:  # the thread ended meanwhile
            continue
        out[f"{name}/{tid}"] = (ns, sleeps)
    return out


def rates(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], seconds: float
) -> dict[str, tuple[float, float]]:
    """ms a second of each thread present both times, and its wakes a second."""
    return {
        t: (
            round((after[t][0] - before[t][0]) / seconds / 1e6, 3),
            round((after[t][1] - before[t][1]) / seconds, 2),
        )
        for t in after
        if t in before
    }


def _threads(
    pids: list[int], per: dict[int, dict[str, tuple[float, float]]]
) -> dict[str, tuple[float, float]]:
    """ms a second and wakes a second of each thread of ``pids``, by process, thread name and id."""
    return {f"{pid}/{tid}": rate for pid in pids for tid, rate in per[pid].items()}


def main() -> None:
    """Start a cluster, let it idle, print one JSON line."""
    import par  # here: W5 (workloads.py) reads run_times for peers that are not par

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--engines", type=int, default=8)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds before measuring")
    args = p.parse_args()
    cluster = par.Cluster(n=args.engines)
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(args.engines, timeout=120)
        controller = int(rc.status()["pid"])
        ctl = [controller, *(c.pid for c in psutil.Process(controller).children())]
        engines = list(rc[:].apply_sync(os.getpid))
        pids = [os.getpid(), *ctl, *engines]
        time.sleep(args.settle)
        before = {pid: run_times(pid) for pid in pids}
        time.sleep(args.seconds)
        after = {pid: run_times(pid) for pid in pids}
        per = {pid: rates(before[pid], after[pid], args.seconds) for pid in pids}
        total = {pid: round(sum(ms for ms, _ in r.values()), 3) for pid, r in per.items()}
        threads: dict[str, list[tuple[float, float]]] = {}
        for pid in engines:  # an engine's threads by name, the main thread as "main"
            for tid, rate in per[pid].items():
                name = "main" if tid.endswith(f"/{pid}") else tid.split("/")[0]
                threads.setdefault(name, []).append(rate)
        out = {
            "engines": args.engines,
            "seconds": args.seconds,
            "load": os.getloadavg()[0],
            "client_ms_per_s": total[os.getpid()],
            "controller_ms_per_s": [total[pid] for pid in ctl],
            "controller_threads": _threads(ctl, per),
            "client_threads": _threads([os.getpid()], per),
            "engine_ms_per_s_median": statistics.median(total[pid] for pid in engines),
            "engine_threads_median": {
                name: {
                    "ms_per_s": statistics.median(ms for ms, _ in v),
                    "wakes_per_s": statistics.median(w for _, w in v),
                }
                for name, v in sorted(threads.items())
            },
        }
        print(json.dumps(out), flush=True)
    finally:
        cluster.stop_cluster_sync()


if __name__ == "__main__":
    main()
