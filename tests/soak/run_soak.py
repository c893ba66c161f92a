"""Soak: tasks flow for a while as engines are killed and added at random.

    python tests/soak/run_soak.py --minutes 10      (what `nox -s soak` runs)

Every submitted task must end accounted for: a correct result, or an
EngineError after its retries ran out. Anything else (a wrong result, a
task that never finishes, an unexpected error) fails the run. It also
reports the controller's memory at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from collections import Counter

import par
import psutil


def square(x: int) -> int:
    """The work: small, and checkable."""
    return x * x


def feeder(
    rc: par.Client, stop: threading.Event, tally: Counter[str], lock: threading.Lock
) -> None:
    """Submit batches of load-balanced tasks and check every result."""
    lv = rc.load_balanced_view(retries=3)
    base = 0
    while not stop.is_set():
        batch = list(range(base, base + 200))
        base += 200
        ars = [lv.apply_async(square, x) for x in batch]
        for x, ar in zip(batch, ars, strict=True):
            try:
                value = ar.get(timeout=120)
                outcome = "ok" if value == x * x else "wrong"
            except par.EngineError:
                outcome = "engine_error"
            except TimeoutError:
                outcome = "hung"
            except Exception as exc:
                outcome = f"unexpected {type(exc).__name__}"
            with lock:
                tally[outcome] += 1


def million(rc: par.Client, bursts: int = 20, size: int = 50_000) -> int:
    """Run 1,000,000 load-balanced tasks in bursts; check every result and controller memory."""
    controller = psutil.Process(rc.status()["pid"])
    lv = rc.load_balanced_view()
    rss = {}
    t0 = time.monotonic()
    for b in range(bursts):
        lo = b * size
        got = lv.map_async(square, range(lo, lo + size)).get(timeout=600)
        if got != [x * x for x in range(lo, lo + size)]:
            print(f"soak: FAILED: wrong results in burst {b}", file=sys.stderr)
            return 1
        rss[lo + size] = controller.memory_info().rss >> 20
        print(f"soak: {lo + size} tasks correct, controller {rss[lo + size]} MiB", flush=True)
    first, last = rss[size], rss[bursts * size]
    took = time.monotonic() - t0
    print(
        f"soak: {bursts * size} tasks in {took:.0f} s, all correct; controller RSS "
        f"{first} MiB after {size} -> {last} MiB after {bursts * size}"
    )
    return 0


def main() -> int:
    """Run the soak; exit non-zero if any task is unaccounted for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--engines", type=int, default=4)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--million", action="store_true", help="instead: 1,000,000 tasks, every result checked"
    )
    args = parser.parse_args()
    if args.million:
        with par.Cluster(n=args.engines) as rc:
            return million(rc)
    rng = random.Random(args.seed)
    cluster = par.Cluster(
        n=args.engines, controller_args=["--heartbeat", "0.5", "--heartbeat-timeout", "3"]
    )
    rc = cluster.start_and_connect_sync()
    controller = psutil.Process(rc.status()["pid"])
    rss_start = controller.memory_info().rss
    stop = threading.Event()
    tally: Counter[str] = Counter()
    lock = threading.Lock()
    clients = [cluster.connect_client_sync() for _ in range(args.clients)]
    threads = [threading.Thread(target=feeder, args=(c, stop, tally, lock)) for c in clients]
    for t in threads:
        t.start()
    killed = added = 0
    deadline = time.monotonic() + args.minutes * 60
    try:
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(2, 8))
            engines = rc.engines()
            if len(engines) > 1 and rng.random() < 0.6:
                victim = rng.choice(list(engines.values()))
                os.kill(int(victim["pid"]), signal.SIGKILL)
                killed += 1
            else:
                cluster.add_engines(1)
                added += 1
            with lock:
                print(f"soak: {dict(tally)} killed={killed} added={added}", flush=True)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
        rss_end = controller.memory_info().rss
        status = rc.status()
        for c in clients:
            c.close()
        cluster.stop_cluster_sync()
    print(f"soak: finished: {dict(tally)}; engines killed {killed}, added {added}")
    rss = f"{rss_start >> 20} MiB -> {rss_end >> 20} MiB"
    print(f"soak: controller RSS {rss}; counts {status['counts']}")
    bad = {k: v for k, v in tally.items() if k not in ("ok", "engine_error")}
    if bad or not tally["ok"]:
        print(f"soak: FAILED: {bad or 'no task completed'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
