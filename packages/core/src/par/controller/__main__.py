"""``par controller`` and ``python -m par.controller``: run a controller in the foreground.

Its options are the fields of :class:`~par.controller.config.ControllerConfig`,
one argument each (``FIELDS``: the flag names the field, the field gives the
default), and a few about this process: where the connection file goes,
``--restore``, the SQLite file, the log level. A controller already running
on the connection file is refused, naming it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import ClusterError
from ..leftovers import named_controller
from .app import serve
from .config import ControllerConfig
from .scheduler import SCHEMES

# (flag of a ControllerConfig field, help, how argparse takes it)
FIELDS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--cluster-id", "name of the cluster", {}),
    ("--ip", "address to listen on (default: loopback)", {}),
    ("--location", "host name engines and clients use", {}),
    ("--scheme", "load-balancing scheme (none: no load-balanced tasks)", {"choices": SCHEMES}),
    (
        "--hwm",
        "requests an engine may hold (0: no limit; default: ~5 ms of its tasks, 2 to 64)",
        {"type": int},
    ),
    ("--heartbeat", "seconds between heartbeats", {"type": float}),
    ("--heartbeat-timeout", "silence after which an engine is declared lost", {"type": float}),
    ("--max-records", "task records kept", {"type": int}),
    (
        "--max-record-bytes",
        "bytes of requests, results and output kept in task records",
        {"type": int},
    ),
    (
        "--max-message-bytes",
        "the largest frame a client or engine may send (a larger one is refused unread; "
        "data sent in chunks is not limited; default: 1 GiB)",
        {"type": int},
    ),
    (
        "--client-hwm",
        "messages queued for a client that is not reading, before its results wait in "
        "the controller and its tasks are no longer dispatched (default: %(default)s)",
        {"type": int},
    ),
    (
        "--curve",
        "CurveZMQ encryption (auto: on whenever listening beyond loopback)",
        {"choices": ("auto", "on", "off")},
    ),
    (
        "--db",
        "where task records live: memory (bounded), or sqlite (results survive a restart)",
        {"choices": ("memory", "sqlite")},
    ),
)


def _field(flag: str) -> str:
    return flag[2:].replace("-", "_")


def parser() -> argparse.ArgumentParser:
    """The arguments of ``par controller``."""
    defaults = ControllerConfig()
    p = argparse.ArgumentParser(prog="par controller", description="Run a controller.")
    for flag, help, how in FIELDS:
        p.add_argument(flag, default=getattr(defaults, _field(flag)), help=help, **how)
    p.add_argument(
        "--file",
        default=None,
        help="where to write the connection file (default: the cluster's file under $PAR_HOME)",
    )
    p.add_argument(
        "--db-file", default=None, help="the SQLite file (default: the cluster's records.sqlite)"
    )
    p.add_argument(
        "--restore",
        action="store_true",
        help="come back on the key and ports of the existing connection file "
        "(engines and clients of a crashed controller reconnect)",
    )
    p.add_argument("--log-level", default="INFO", help="logging level")
    return p


def config_of(args: argparse.Namespace) -> ControllerConfig:
    """The controller's settings from its parsed arguments."""
    fields = {_field(flag): getattr(args, _field(flag)) for flag, _, _ in FIELDS}
    db_path = args.db_file or str(paths.cluster_dir(args.cluster_id) / "records.sqlite")
    return ControllerConfig(**fields, db_path=db_path)


def _refuse_a_second(connection_file: Path, cluster_id: str) -> None:
    """Raise ClusterError, naming it, if a controller runs on ``connection_file``."""
    running = named_controller(connection_file)
    if running is not None:
        cid = paths.read_json(connection_file).get("cluster_id", cluster_id)
        raise ClusterError(
            f"cluster {cid!r} is running on {connection_file} (controller pid {running.pid}): "
            f"stop it with `par stop --cluster-id {cid}`, or give this controller another "
            "--cluster-id or --file"
        )


def run(argv: Sequence[str]) -> int:
    """Parse ``par controller`` arguments and run a controller until it is told to stop."""
    args = parser().parse_args(argv)
    try:
        paths.check_cluster_id(args.cluster_id)
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
        conn = Path(args.file) if args.file else paths.connection_file(args.cluster_id)
        _refuse_a_second(conn, args.cluster_id)
        if args.db == "sqlite" and not args.db_file:
            paths.make_private_dir(paths.cluster_dir(args.cluster_id))
        serve(config_of(args), str(conn), args.restore)
    except (ValueError, OSError, ClusterError) as exc:
        print(f"par controller: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
