"""``python -m par.sim CONNECTION_FILE -n N``: run N simulated engines in this process."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from .. import connection
from ..errors import ClusterError
from .swarm import COMMANDS, Swarm


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(0)  # the engines unregister on the way out


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the engines until ``stop`` or the end of stdin."""
    commands = "\n".join(f"  {name:8} {text}" for name, text in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="python -m par.sim",
        description="Run simulated engines against a running controller (see par.sim). "
        "Commands on stdin, one a line, each answered by a JSON line on stdout:\n" + commands,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("connection_file", help="the cluster's connection file")
    parser.add_argument("-n", "--engines", type=int, required=True, help="engines to simulate")
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds each task takes (default 0: at once)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the connection file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s par.sim %(message)s")
    signal.signal(signal.SIGTERM, _stop)
    try:
        swarm = Swarm(connection.load(args.connection_file, args.timeout), args.engines, args.delay)
        swarm.run()
    except (ClusterError, ValueError) as exc:
        print(f"par.sim: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
