"""``par controller`` and ``python -m par.controller``: run a controller in the foreground.

Its options are the fields of :class:`~par.controller.config.ControllerConfig`,
one argument each (``FIELDS``: the flag names the field, the field gives the
default), and a few about this process: where the connection file goes,
``--restore``, the SQLite file, the log level. A controller already running
on the connection file is refused, naming it.

Run by hand (``par controller``), it says once it is up where its connection
file is and the lines that start engines, connect a client and stop it, as
ipcontroller does; run by a launcher (``python -m par.controller``), it does not:
the launcher says what matters.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from .. import paths
from ..connection import ConnectionInfo
from ..errors import ClusterError
from ..leftovers import named_controller
from .app import serve
from .config import ControllerConfig
from .scheduler import SCHEMES


def _number(kind: type[int] | type[float], least: float, what: str) -> Callable[[str], Any]:
    """An argparse type: a number of ``kind`` no less than ``least``, else a usage error
    that names the value and what is wanted (a heartbeat of 0 s would spin)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    return parse


POSITIVE_SECONDS = _number(float, 1e-3, "a positive number of seconds")
POSITIVE = _number(int, 1, "a whole number of at least 1")
AT_LEAST_0 = _number(int, 0, "a whole number of at least 0")

# (flag of a ControllerConfig field, help, how argparse takes it)
FIELDS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("--cluster-id", "name of the cluster", {}),
    ("--ip", "address to listen on (default: loopback)", {}),
    ("--location", "host name engines and clients use", {}),
    ("--scheme", "load-balancing scheme (none: no load-balanced tasks)", {"choices": SCHEMES}),
    (
        "--hwm",
        "requests an engine may hold (0: no limit; default: ~5 ms of its tasks, 2 to 64)",
        {"type": AT_LEAST_0},
    ),
    ("--heartbeat", "seconds between heartbeats", {"type": POSITIVE_SECONDS}),
    (
        "--heartbeat-timeout",
        "silence after which an engine is declared lost",
        {"type": POSITIVE_SECONDS},
    ),
    (
        "--heartbeats-per-second",
        "engines' heartbeats a second the controller takes before the interval and the "
        "timeout grow in step (in whole seconds, at most 10; 0: never; default: %(default)s)",
        {"type": AT_LEAST_0},
    ),
    (
        "--relay-timeout",
        "silence after which a relay process that still runs is taken for stopped or stuck, "
        "killed and started again (default: %(default)s)",
        {"type": POSITIVE_SECONDS},
    ),
    ("--max-records", "task records kept", {"type": POSITIVE}),
    (
        "--max-record-bytes",
        "bytes of requests, results and output kept in task records",
        {"type": AT_LEAST_0},
    ),
    (
        "--max-message-bytes",
        "the largest frame a client or engine may send (a larger one is refused unread; "
        "data sent in chunks is not limited; default: 1 GiB)",
        {"type": POSITIVE},
    ),
    (
        "--client-hwm",
        "messages queued for a client that is not reading, before its results wait in "
        "the controller and its tasks are no longer dispatched (default: %(default)s)",
        {"type": POSITIVE},
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
    (
        "--owner",
        "pid of the process whose end stops the engines and this controller (the process "
        "that started the cluster, which would stop it at exit; 0: none)",
        {"type": AT_LEAST_0},
    ),
)


def _field(flag: str) -> str:
    return flag[2:].replace("-", "_")


class _Refusing(argparse.ArgumentParser):
    """A parser that raises its error instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def parser(cls: type[argparse.ArgumentParser] = argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``par controller``."""
    defaults = ControllerConfig()
    p = cls(
        prog="par controller",
        description="Run a controller in the foreground. Once up it prints its connection "
        "file and the `par engine --file` line that starts engines; `par list`, `par engines` "
        "and `par stop` manage its cluster (when its connection file is the cluster's own).",
    )
    for flag, help, how in FIELDS:
        p.add_argument(flag, default=getattr(defaults, _field(flag)), help=help, **how)
    p.add_argument(
        "--file",
        default=None,
        help="where to write the connection file (default: the cluster's file under $PAR_HOME, "
        "where `par list` and `par stop` find it)",
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
    p.add_argument(
        "--log-to-file",
        action="store_true",
        help="log to controller.log in the cluster's logs/ folder instead of stderr (a "
        "controller par start runs always does)",
    )
    return p


def refusal(argv: Sequence[str]) -> str | None:
    """What ``par controller`` would refuse in ``argv``, in one line (None: nothing), so
    that ``par start`` can say it before any process starts."""
    try:
        parser(_Refusing).parse_args(argv)
    except ValueError as exc:
        return str(exc)
    return None


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


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def banner(info: ConnectionInfo, connection_file: Path, ip: str, restored: bool) -> str:
    """What a controller started by hand prints once it is up: its connection file, and
    how to start engines, connect a client and stop it."""
    cid, connection_file = info.cluster_id, connection_file.absolute()
    mine = connection_file.resolve() == paths.connection_file(cid).resolve()
    default = cid == paths.DEFAULT_CLUSTER_ID
    target = ("" if default else f"cluster_id={cid!r}") if mine else repr(str(connection_file))
    stop = f", or `par stop{'' if default else ' --cluster-id ' + cid}`" if mine else ""
    where = (
        "engines on this machine only; for others give --ip 0.0.0.0 --location HOST"
        if ip in LOOPBACK
        else "on another machine, copy the connection file there and give its path"
    )
    return (
        f"par controller: cluster {cid!r} is {'back' if restored else 'up'}; "
        f"connection file: {connection_file}\n"
        f"  engines:  par engine --file {connection_file}   ({where})\n"
        f'  connect:  python -c "import par; rc = par.Client({target}); print(rc.ids)"\n'
        f"  stop:     Ctrl-C here{stop}"
    )


def _log_stream(cluster_id: str) -> TextIO:
    """Where ``--log-to-file`` logs: the cluster's ``logs/controller.log`` (said on stderr)."""
    path = paths.log_dir(cluster_id) / "controller.log"
    print(f"par controller: logging to {path}", file=sys.stderr, flush=True)
    return paths.log_file_stream(path)


def run(argv: Sequence[str], announce: bool = False) -> int:
    """Parse ``par controller`` arguments and run a controller until it is told to stop;
    with ``announce``, print :func:`banner` once it is up."""
    args = parser().parse_args(argv)
    try:
        paths.check_cluster_id(args.cluster_id)
        logging.basicConfig(
            level=args.log_level.upper(),
            format="%(asctime)s %(name)s %(message)s",
            stream=_log_stream(args.cluster_id) if args.log_to_file else None,
        )
        conn = Path(args.file) if args.file else paths.connection_file(args.cluster_id)
        _refuse_a_second(conn, args.cluster_id)
        if args.db == "sqlite" and not args.db_file:
            paths.make_private_dir(paths.cluster_dir(args.cluster_id))
        ready = None
        if announce:

            def ready(info: ConnectionInfo) -> None:
                print(banner(info, conn, args.ip, args.restore), flush=True)

        serve(config_of(args), str(conn), args.restore, ready)
    except (ValueError, OSError, ClusterError) as exc:
        print(f"par controller: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
