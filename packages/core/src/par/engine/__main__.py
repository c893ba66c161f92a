"""``python -m par.engine``: run an engine with a minimal import footprint.

The options and the running of one engine from them are shared with the fork
server (:mod:`par.engine.forkserver`), which takes the same options.
"""

import argparse
import importlib
import logging
import sys

from .app import main


def engine_parser(
    prog: str = "par engine", description: str = "Run one par engine."
) -> argparse.ArgumentParser:
    """The options of an engine."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
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
    parser.add_argument(
        "--preload",
        default="",
        help="modules to import before registering, comma-separated (e.g. numpy,pandas)",
    )
    return parser


def preload(modules: str) -> None:
    """Import each of the comma-separated ``modules``; exit with a one-line error if one fails."""
    for name in filter(None, (m.strip() for m in modules.split(","))):
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise SystemExit(
                f"par engine: cannot preload {name!r}: {type(exc).__name__}: {exc}"
            ) from None


def run_engine(args: argparse.Namespace) -> int:
    """Run one engine with parsed options; a failure is one line on stderr and status 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s par.engine %(message)s")
    try:
        return main(args.file, args.timeout, args.output_limit, args.controller_timeout)
    except Exception as exc:  # a clear one-line error instead of a traceback
        print(f"par engine: {exc}", file=sys.stderr)
        return 1


def run() -> int:
    """Parse engine arguments, import the preload modules and run an engine."""
    args = engine_parser().parse_args()
    preload(args.preload)
    return run_engine(args)


if __name__ == "__main__":
    sys.exit(run())
