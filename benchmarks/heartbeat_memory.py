"""The controller's memory over many heartbeats: what a long-running controller settles at.

``python benchmarks/heartbeat_memory.py [--engines 2000] [--heartbeat 0.25] [--beats 600]``

The bench's W8 reads the controller's RSS minutes after its engines register.
A controller that runs for hours holds more: ZeroMQ keeps each connection's
message queues in chunks of 256 slots (fixed when libzmq is built), so a
connection's memory grows as messages pass through it until it holds its
chunks and their spares, and every heartbeat is a message on the
engine's control connection (and its ``hbok`` another, when it asks). This starts a
controller (``par controller``, unchanged) with simulated engines
(``par.sim``) beating every ``--heartbeat`` seconds, with no bound on the
rate (``--heartbeats-per-second 0``) so that hundreds of beats pass in
minutes rather than the hours they take at 10,000 engines, and prints one
JSON line each ``--every`` beats: the RSS of the hub and each relay (MB),
and the control relay's KB per engine since before they came. It fails if
the controller loses an engine meanwhile (none is killed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import psutil
from sim_scale import Lost, wait_up


def rss_by_role(hub: psutil.Process) -> dict[str, float]:
    """MB resident in the hub and each of its relays, by role."""
    out = {"hub": hub.memory_info().rss / 1e6}
    for child in hub.children():
        role = child.cmdline()[-1]  # python -m par.controller.relays KIND
        out[role] = child.memory_info().rss / 1e6
    return {role: round(mb, 1) for role, mb in out.items()}


def main() -> None:
    """Start the controller and engines, print the memory as the beats pass."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--engines", type=int, default=2000, help="simulated engines (default 2000)")
    p.add_argument("--heartbeat", type=float, default=0.25, help="seconds between beats")
    p.add_argument("--beats", type=int, default=600, help="heartbeats to wait through")
    p.add_argument("--every", type=int, default=100, help="beats between two lines")
    args = p.parse_args()
    import par
    from par import paths
    from par.sim import SimEngines

    hb = args.heartbeat
    controller_args = ["--heartbeat", f"{hb:g}", "--heartbeat-timeout", f"{6 * hb:g}"]
    controller_args += ["--heartbeats-per-second", "0"]
    cluster = par.Cluster(n=0, controller_args=controller_args)
    cluster.start_controller_sync()
    try:
        rc = cluster.connect_client_sync()
        hub = psutil.Process(int(rc.status()["pid"]))
        lost = Lost()
        rc.subscribe_events(lost)
        before = rss_by_role(hub)

        def line(beats: int, **extra: Any) -> None:
            now = rss_by_role(hub)
            per_engine = (now["control"] - before["control"]) * 1e3 / args.engines
            row = {"beats": beats, "rss_MB": now, "control_KB_per_engine": round(per_engine, 1)}
            print(json.dumps({**row, **extra}), flush=True)

        with SimEngines(str(paths.connection_file(cluster.cluster_id)), args.engines):
            up = wait_up(rc, args.engines)
            if up < args.engines:
                sys.exit(f"only {up:,} of {args.engines:,} engines registered")
            line(0, engines=args.engines)
            start = time.monotonic()
            for beats in range(args.every, args.beats + 1, args.every):
                time.sleep(max(0.0, start + beats * hb - time.monotonic()))
                line(beats)
            if lost.count():
                sys.exit(f"the controller declared {lost.count():,} engines lost")
        rc.close()
    finally:
        cluster.stop_cluster_sync()


if __name__ == "__main__":
    main()
