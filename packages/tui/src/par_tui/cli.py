"""``par monitor`` argument parsing: connect first, so a missing cluster is one clear line."""

from __future__ import annotations

import argparse
import sys

from par import paths


def main(argv: list[str]) -> int:
    """Entry point of ``par monitor``."""
    parser = argparse.ArgumentParser(
        prog="par monitor",
        description="Watch a running cluster live in the terminal (press ? inside for the keys).",
    )
    parser.add_argument(
        "--cluster-id", default=paths.DEFAULT_CLUSTER_ID, help="name of the cluster to watch"
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="only watch: no key changes the cluster (no add, stop, signal or abort)",
    )
    parser.add_argument(
        "--refresh",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often to ask the controller for its status and redraw (default: 1)",
    )
    args = parser.parse_args(argv)
    if not 0.1 <= args.refresh <= 60:
        parser.error(f"--refresh must be between 0.1 and 60 seconds, not {args.refresh}")

    from par.errors import ParError

    from .source import MonitorSource

    source = MonitorSource(args.cluster_id, interval=args.refresh)
    try:
        paths.check_cluster_id(args.cluster_id)
        source.connect()
    except (ParError, TimeoutError, ValueError) as exc:
        print(f"par monitor: error: {exc}", file=sys.stderr)
        return 1

    from .app import MonitorApp

    MonitorApp(source, read_only=args.read_only, refresh=args.refresh).run()
    source.close()
    return 0
