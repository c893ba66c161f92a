"""``python -m par.engine``: run an engine with a minimal import footprint.

The options and the running of one engine from them are shared with the fork
server (:mod:`par.engine.forkserver`), which takes the same options. Before it
registers, an engine moves to its ``--work-dir`` and imports its ``--preload``
modules (the fork server does both once, for every engine it forks).
"""

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from .. import paths
from .app import main
from .control import CONTROLLER_TIMEOUT


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
        default=CONTROLLER_TIMEOUT,
        help="stop after the controller is silent this many seconds",
    )
    parser.add_argument(
        "--work-dir",
        default="",
        help="directory to run tasks in (default: the one the engine starts in)",
    )
    parser.add_argument(
        "--log-to-file",
        action="store_true",
        help="log to engine-PID.log in the cluster's logs/ folder instead of stderr (the "
        "engines par start and par engines run always log to files)",
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


def enter_work_dir(args: argparse.Namespace) -> None:
    """Make the ``--work-dir`` of an engine's ``args`` (if given) the working directory and
    the first place imports look, as the directory a script runs from is (its ``--file``,
    if relative, made absolute first); exit with a one-line error if it is not a
    directory."""
    work_dir = args.work_dir
    if not work_dir:
        return
    args.file = os.path.abspath(args.file)
    try:
        os.chdir(os.path.expanduser(work_dir))  # ~: the engine's home, on its host
    except OSError as exc:
        raise SystemExit(
            f"par engine: --work-dir {work_dir}: {exc.strerror}; give an existing directory"
        ) from None
    here = os.getcwd()
    if sys.path[:1] != [here]:
        sys.path.insert(0, here)


def _log_stream(connection_file: str) -> TextIO | None:
    """Where ``--log-to-file`` logs: ``engine-PID.log`` in the logs/ folder of the cluster
    the connection file names (said on stderr); None (stderr) if the file does not say,
    for the engine to report what is wrong with it."""
    try:
        cluster_id = paths.check_cluster_id(paths.read_json(Path(connection_file))["cluster_id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = paths.log_dir(cluster_id) / f"engine-{os.getpid()}.log"
    print(f"par engine: logging to {path}", file=sys.stderr, flush=True)
    return paths.log_file_stream(path)


def run_engine(args: argparse.Namespace) -> int:
    """Run one engine with parsed options; a failure is one line on stderr and status 1."""
    try:
        stream = _log_stream(args.file) if args.log_to_file else None
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s par.engine %(message)s", stream=stream
        )
        return main(args.file, args.timeout, args.output_limit, args.controller_timeout)
    except Exception as exc:  # a clear one-line error instead of a traceback
        print(f"par engine: {exc}", file=sys.stderr)
        return 1


def run() -> int:
    """Parse engine arguments, import the preload modules and run an engine."""
    args = engine_parser().parse_args()
    enter_work_dir(args)
    preload(args.preload)
    return run_engine(args)


if __name__ == "__main__":
    sys.exit(run())
