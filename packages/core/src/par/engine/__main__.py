"""``python -m par.engine``: run an engine with a minimal import footprint."""

import argparse
import logging
import sys

from .app import main


def run() -> int:
    """Parse engine arguments and run an engine."""
    parser = argparse.ArgumentParser(prog="par engine", description="Run one par engine.")
    parser.add_argument("--file", required=True, help="the cluster's connection file")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait to register")
    parser.add_argument(
        "--output-limit", type=int, default=1 << 20, help="characters of output kept per task"
    )
    parser.add_argument(
        "--controller-timeout",
        type=float,
        default=60.0,
        help="stop after the controller is silent this many seconds",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s par.engine %(message)s")
    try:
        return main(args.file, args.timeout, args.output_limit, args.controller_timeout)
    except Exception as exc:  # a clear one-line error instead of a traceback
        print(f"par engine: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
