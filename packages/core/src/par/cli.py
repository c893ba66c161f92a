"""The ``par`` command: parses arguments and calls the library; nothing else."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from . import paths

if TYPE_CHECKING:
    from .client.client import Client
    from .cluster import Cluster

EXIT_ERROR = 1
EXIT_USAGE = 2


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


def _fail(message: str) -> None:
    raise CLIError(message)


# ---- par start / engines ---------------------------------------------------------------------


def _cluster_id(value: str) -> str:
    """An argparse type: a valid cluster id, else a usage error that says what is valid."""
    try:
        return paths.check_cluster_id(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cluster_id_option(parser: argparse._ActionsContainer, help: str) -> None:
    """Add the ``--cluster-id`` option, and ipyparallel's ``--profile`` that names the
    cluster too, to a parser or one of its groups (:func:`_chosen_cluster` reads them)."""
    parser.add_argument(
        "--cluster-id",
        type=_cluster_id,
        default=None,
        help=f"{help} (default: {paths.DEFAULT_CLUSTER_ID})",
    )
    parser.add_argument(
        "--profile",
        type=_cluster_id,
        default=None,
        help="the same as --cluster-id: par has no profiles, a profile is a cluster id "
        "(as in par.Client(profile=...))",
    )


def _chosen_cluster(args: argparse.Namespace) -> str:
    """The cluster ``--cluster-id`` or ``--profile`` names (the default cluster if neither)."""
    if args.cluster_id and args.profile and args.cluster_id != args.profile:
        _fail(
            f"--cluster-id {args.cluster_id} and --profile {args.profile} name two clusters "
            "(a profile is a cluster id in par): give one"
        )
    return str(args.cluster_id or args.profile or paths.DEFAULT_CLUSTER_ID)


def _log_to_file_option(parser: argparse.ArgumentParser) -> None:
    """ipcluster's ``--log-to-file``: what par's launched processes always do."""
    parser.add_argument(
        "--log-to-file",
        action="store_true",
        help="accepted as ipcluster takes it: the controller and engines par starts always "
        "log to files, in the cluster's logs/ folder",
    )


def _launcher_options(parser: argparse.ArgumentParser, classes: Sequence[Any]) -> None:
    seen: set[str] = set()
    for cls in classes:
        if not cls.OPTIONS:
            continue
        group = parser.add_argument_group(f"options of the {cls.PLUGIN_NAME!r} {cls.KIND} launcher")
        for opt in cls.OPTIONS:
            if opt.name in seen:
                continue
            seen.add(opt.name)
            kwargs: dict[str, Any] = {
                "dest": "opt_" + opt.name,
                "metavar": opt.name.upper(),
                "help": f"{opt.help} (default: {opt.default!r})",
            }
            if opt.type is bool:
                kwargs["action"] = argparse.BooleanOptionalAction
            else:
                kwargs["type"] = opt.type
            group.add_argument(opt.flag, default=argparse.SUPPRESS, **kwargs)


def _resolve_launchers(names: Sequence[tuple[str, str]]) -> list[Any]:
    from .plugins import PluginError, launcher_class

    try:
        return [launcher_class(kind, name) for kind, name in names]
    except PluginError as exc:
        _fail(str(exc))
    return []


def _progress(count: int, total: int) -> None:
    end = "\r" if sys.stderr.isatty() and count < total else "\n"
    print(f"par: engines registered: {count}/{total}", end=end, file=sys.stderr, flush=True)


def _start_parser() -> argparse.ArgumentParser:
    from .controller.scheduler import SCHEMES

    parser = argparse.ArgumentParser(
        prog="par start",
        description="Start a controller and engines, in the foreground unless --daemonize.",
    )
    parser.add_argument(
        "-n", "--n", type=int, default=None, help="number of engines (default: CPU count)"
    )
    parser.add_argument(
        "--launcher", default=None, help="launcher for controller and engines (default: local)"
    )
    parser.add_argument("--engines", default=None, help="engine launcher (overrides --launcher)")
    parser.add_argument("--controller", default=None, help="controller launcher (default: local)")
    _cluster_id_option(parser, "name of the cluster")
    parser.add_argument(
        "--daemonize", action="store_true", help="start in the background and return"
    )
    parser.add_argument(
        "--engine-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for engines to register (default: %(default)s)",
    )
    parser.add_argument(
        "--scheme",
        default=None,
        choices=SCHEMES,
        help="load-balancing scheme (default: leastload; none: no load-balanced tasks)",
    )
    parser.add_argument(
        "--restart-engines",
        action="store_true",
        help="start a replacement whenever an engine is lost (keeps `par start` in the foreground)",
    )
    parser.add_argument(
        "--db",
        choices=("memory", "sqlite"),
        default=None,
        help="task records in memory (default) or in SQLite, so results survive a restart",
    )
    parser.add_argument(
        "--controller-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for `par controller` (repeatable), e.g. --controller-arg=--hwm=1",
    )
    parser.add_argument(
        "--restore",
        action="store_true",
        help="bring back a cluster whose controller died: a controller with the cluster's own "
        "settings, on its key and ports; its engines and clients come back by themselves",
    )
    _work_dir_option(parser, "the engines run their tasks in (default: the one they start in)")
    parser.add_argument(
        "--clean-logs",
        action="store_true",
        help="first delete the logs that earlier runs of this cluster left in "
        "$PAR_HOME/previous (after a crash); their task databases are kept",
    )
    _log_to_file_option(parser)
    return parser


def _work_dir_option(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--work-dir",
        default=None,
        metavar="DIR",
        help=f"directory {help}; it must exist (on the engines' hosts for ssh)",
    )


# Options a restore takes from the cluster instead (it refuses them), by their dest.
_NOT_WITH_RESTORE = (
    "n",
    "db",
    "scheme",
    "controller_arg",
    "launcher",
    "engines",
    "controller",
    "work_dir",
)


def _engine_launcher_names(launcher: str | None, engines: str | None) -> str:
    return engines or launcher or "local"


def _controller_launcher_name(launcher: str | None, controller: str | None) -> str:
    from .plugins import PluginError, plugins

    if controller:
        return controller
    if launcher:
        try:
            plugins().load_all()
        except PluginError as exc:
            _fail(str(exc))
        if launcher in plugins().registry.controllers:
            return launcher
    return "local"


def cmd_start(argv: Sequence[str]) -> int:
    """``par start``."""
    pre = argparse.ArgumentParser(add_help=False)
    for flag in ("--launcher", "--engines", "--controller"):
        pre.add_argument(flag, default=None)
    known, _ = pre.parse_known_args(argv)
    eng = _engine_launcher_names(known.launcher, known.engines)
    ctl = _controller_launcher_name(known.launcher, known.controller)
    ctl_cls, eng_cls = _resolve_launchers([("controller", ctl), ("engines", eng)])
    parser = _start_parser()
    _launcher_options(parser, [ctl_cls, eng_cls])
    args = parser.parse_args(argv)
    args.cluster_id = _chosen_cluster(args)
    options = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_")}
    if args.n is not None and args.n < 1:
        _fail(f"-n must be at least 1, not {args.n}")
    if args.clean_logs:
        _clean_logs(args.cluster_id)
    if args.restore:
        given = [k for k in _NOT_WITH_RESTORE if getattr(args, k)] + list(options)
        if given:
            flag = "-n" if given[0] == "n" else "--" + given[0].replace("_", "-")
            _fail(f"--restore brings the cluster back with its own settings: drop {flag}")
        return _run(args, lambda: _restore(args))

    from .cluster import Cluster
    from .controller.__main__ import refusal

    refused = refusal(args.controller_arg)
    if refused is not None:
        _fail(f"--controller-arg: {refused} (`par controller --help` lists its arguments)")
    try:
        cluster = Cluster(
            args.n,
            engines=eng,
            controller=ctl,
            cluster_id=args.cluster_id,
            controller_args=[
                *args.controller_arg,
                *(["--db", args.db] if args.db else []),
                *(["--scheme", args.scheme] if args.scheme else []),
            ],
            engine_timeout=args.engine_timeout,
            restart_lost_engines=args.restart_engines,
            work_dir=args.work_dir or "",
            shutdown_atexit=not args.daemonize,
            **options,
        )
    except (TypeError, ValueError) as exc:
        _fail(str(exc))
    n = args.n or os.cpu_count() or 1
    print(
        f"par: starting cluster {cluster.cluster_id!r}: controller ({ctl}) and {n} engines ({eng})",
        file=sys.stderr,
        flush=True,
    )
    return _run(args, lambda: _start(cluster, args))


def _clean_logs(cluster_id: str) -> None:
    """``--clean-logs``: delete the logs earlier runs of the cluster left, saying so."""
    from .leftovers import clean_logs

    removed = clean_logs(cluster_id)
    if removed:
        where = ", ".join(str(p) for p in removed)
        print(f"par: deleted the old logs of cluster {cluster_id!r} in {where}", file=sys.stderr)
    else:
        print(f"par: no old logs of cluster {cluster_id!r} to delete", file=sys.stderr)


def _start(cluster: Cluster, args: argparse.Namespace) -> tuple[Cluster, Client]:
    """Start a new cluster; where one of its id crashed, ask whether to restore it."""
    from .cluster import ClusterCrashed, stop_by_id

    try:
        client = cluster.start_and_connect_sync(args.n, progress=_progress)
    except ClusterCrashed as exc:
        choice = _ask(f"par: {exc}.\nRestore it (r), start anew in its place (n), or quit (q)?")
        if choice == "r":
            return _restore(args)
        if choice != "n":
            raise
        kept = stop_by_id(cluster.cluster_id).kept
        if kept is not None:
            print(f"par: what it left is kept in {kept}", file=sys.stderr)
        client = cluster.start_and_connect_sync(args.n, progress=_progress)
    if cluster.previous is not None:
        print(
            f"par: a cluster {cluster.cluster_id!r} ran here before: what it left is kept in "
            f"{cluster.previous}",
            file=sys.stderr,
        )
    return cluster, client


def _ask(question: str) -> str:
    """The first letter of the user's answer ('r' if they just press Enter); 'q' where
    no one can answer (stdin is not a terminal)."""
    if not sys.stdin.isatty():
        return "q"
    print(f"{question} [R/n/q] ", end="", file=sys.stderr, flush=True)
    try:
        answer = sys.stdin.readline().strip().lower()
    except KeyboardInterrupt:
        return "q"
    return (answer or "r")[0]


def _restore(args: argparse.Namespace) -> tuple[Cluster, Client]:
    """Bring back the controller of a crashed cluster and wait for its engines to return."""
    from .cluster import Cluster
    from .errors import ClusterError

    cid = args.cluster_id
    if not paths.cluster_file(cid).exists():
        if paths.connection_file(cid).exists():
            raise ClusterError(
                f"cluster {cid!r} was started by hand: restore its controller with "
                f"`par controller --cluster-id {cid} --restore`"
            )
        raise ClusterError(f"there is no cluster {cid!r} to restore (stopped, or never started)")
    try:
        cluster = Cluster.from_file(cid)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        flag = "" if cid == paths.DEFAULT_CLUSTER_ID else f" --cluster-id {cid}"
        raise ClusterError(
            f"cannot restore cluster {cid!r}: {paths.cluster_file(cid)} is unreadable ({exc}); "
            f"end it with `par stop{flag}`"
        ) from exc
    cluster.engine_timeout = args.engine_timeout
    cluster.restart_lost_engines = args.restart_engines
    print(
        f"par: restoring cluster {cluster.cluster_id!r}: its controller, on its key and ports",
        file=sys.stderr,
        flush=True,
    )
    return cluster, cluster.restore_and_connect_sync(progress=_progress)


def _run(args: argparse.Namespace, start: Callable[[], tuple[Cluster, Client]]) -> int:
    """Start (or restore) a cluster, then stay in the foreground until it stops or
    Ctrl-C, unless ``--daemonize``."""
    from .errors import ClusterError
    from .launcher import LauncherError

    cluster: Cluster | None = None
    stopping = False

    def _interrupted(signum: int, frame: Any) -> None:
        # The first Ctrl-C or SIGTERM stops the cluster, and from it on both are ignored:
        # a second one however soon (`uv run` passing on a Ctrl-C its process group had
        # too) would cut the stop short before _stop_undisturbed could ignore it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        t0 = time.monotonic()
        cluster, client = start()
        took = time.monotonic() - t0
        _print_ready(cluster.cluster_id, len(client.ids), took, args.daemonize)
        if args.daemonize and args.restart_engines:
            print(
                "par: --restart-engines needs `par start` in the foreground; ignored with "
                "--daemonize",
                file=sys.stderr,
            )
        if not args.restart_engines or args.daemonize:  # the watcher needs the client's events
            cluster.disconnect_client()
        if args.daemonize:
            return 0
        while cluster.controller is not None and cluster.controller.running():
            time.sleep(1.0)  # Ctrl-C ends the sleep at once; an idle machine stays idle
        stopping = True
        _stop_undisturbed(cluster, "par: the controller has stopped; cleaning up")
        return 0
    except KeyboardInterrupt:
        if not stopping and cluster is not None:
            _stop_undisturbed(cluster, "\npar: stopping the cluster...")
            print("par: stopped", file=sys.stderr)
        return 0
    except (ClusterError, LauncherError, TimeoutError, ValueError, OSError) as exc:
        _fail(str(exc))
    return 0


def _stop_undisturbed(cluster: Cluster, notice: str) -> None:
    """Stop a cluster; a second Ctrl-C or SIGTERM must not cut that short and leave
    processes behind (`timeout` signals both `uv run` and its process group, say)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(notice, file=sys.stderr, flush=True)
    cluster.stop_cluster_sync()


def _print_ready(cluster_id: str, n: int, took: float, daemon: bool) -> None:
    arg = "" if cluster_id == paths.DEFAULT_CLUSTER_ID else f"cluster_id={cluster_id!r}"
    stop = "" if cluster_id == paths.DEFAULT_CLUSTER_ID else f" --cluster-id {cluster_id}"
    how = f"`par stop{stop}`" if daemon else f"Ctrl-C here, or `par stop{stop}`"
    print(
        f"par: cluster {cluster_id!r} is up with {n} engine{'' if n == 1 else 's'} ({took:.2f} s)\n"
        f'  connect:  python -c "import par; rc = par.Client({arg}); print(rc.ids)"\n'
        f"  file:     {paths.connection_file(cluster_id)}\n"
        f"  stop:     {how}",
        flush=True,
    )


def cmd_engines(argv: Sequence[str]) -> int:
    """``par engines``: add engines to a running cluster."""
    parser = argparse.ArgumentParser(
        prog="par engines", description="Add engines to a running cluster."
    )
    parser.add_argument("-n", "--n", type=int, required=True, help="number of engines to add")
    parser.add_argument("--launcher", default=None, help="engine launcher (default: the cluster's)")
    _cluster_id_option(parser, "name of the cluster")
    _work_dir_option(parser, "the new engines run their tasks in (default: the cluster's)")
    _log_to_file_option(parser)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--launcher", default=None)
    known, _ = pre.parse_known_args(argv)
    classes = _resolve_launchers([("engines", known.launcher)]) if known.launcher else []
    _launcher_options(parser, classes)
    args = parser.parse_args(argv)
    args.cluster_id = _chosen_cluster(args)
    options = {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_")}
    if args.n < 1:
        _fail(f"-n must be at least 1, not {args.n}")
    from .cluster import Cluster
    from .errors import ClusterError
    from .launcher import LauncherError

    try:
        cluster = Cluster.from_file(args.cluster_id)
        client = cluster.connect_client_sync()
        before = len(client.ids)
        set_id = cluster.add_engines(args.n, args.launcher, args.work_dir, **options)
        try:
            added = cluster.engines[set_id].n
            cluster.wait_for_engines_sync(client, before + added, progress=_progress, sets=[set_id])
        except BaseException:
            cluster.stop_engines_sync(set_id)  # do not leave half-started engines behind
            raise
        finally:
            client.close()
        print(f"par: cluster {args.cluster_id!r} now has {before + added} engines")
    except (ClusterError, LauncherError, TimeoutError, TypeError, ValueError) as exc:
        _fail(str(exc))
    return 0


# ---- par stop / list -------------------------------------------------------------------------


def cmd_stop(argv: Sequence[str]) -> int:
    """``par stop``."""
    parser = argparse.ArgumentParser(prog="par stop", description="Stop a running cluster.")
    group = parser.add_mutually_exclusive_group()
    _cluster_id_option(group, "name of the cluster")
    group.add_argument("--all", action="store_true", help="stop every cluster")
    args = parser.parse_args(argv)
    args.cluster_id = _chosen_cluster(args)
    from .cluster import stop_by_id
    from .errors import ClusterError

    ids = paths.list_cluster_ids() if args.all else [args.cluster_id]
    if args.all and not ids:
        print("par: no clusters to stop")
        return 0
    for cid in ids:
        try:
            stopped = stop_by_id(cid)
        except ClusterError as exc:
            _fail(str(exc))
        if stopped.unreadable:
            print(
                f"par: {stopped.unreadable}: stopped the processes its connection file and "
                "the process table name",
                file=sys.stderr,
            )
        if stopped.strays:
            print(
                f"par: stopped {stopped.strays} process(es) of cluster {cid!r} its launchers "
                "had not recorded",
                file=sys.stderr,
            )
        print(f"par: stopped cluster {cid!r}")
        if stopped.kept is not None:
            kept = ", ".join(sorted(p.name for p in stopped.kept.iterdir()))
            print(f"par: what it left ({kept}) is kept in {stopped.kept}")
    return 0


def _cluster_row(cid: str) -> dict[str, Any]:
    """What ``par list`` says of one cluster: its status, its live engines (those registered
    with a running controller; those its launchers still run after a crash) and launchers."""
    from .cluster import Cluster
    from .errors import ClusterError

    row: dict[str, Any] = {"cluster_id": cid, "status": "stale", "engines": 0, "launcher": "?"}
    try:
        cluster = Cluster.from_file(cid)
    except Exception as exc:
        row["status"] = f"unreadable ({exc})"
        return row
    if cluster.controller_running():
        row["status"] = "running"
        try:
            row["engines"] = cluster.engines_registered()
        except (ClusterError, TimeoutError, OSError):
            row["engines"] = None  # the controller runs but does not answer
    else:
        row["status"] = "crashed" if paths.connection_file(cid).exists() else "stale"
        row["engines"] = cluster.engines_running()
    launchers = sorted({es.PLUGIN_NAME for es in cluster.engines.values()})
    by_hand = ["by hand"] if cluster.controller is None else []  # `par controller`'s cluster
    row["launcher"] = ",".join(by_hand + launchers) or "-"
    return row


def cmd_list(argv: Sequence[str]) -> int:
    """``par list``."""
    parser = argparse.ArgumentParser(
        prog="par list",
        description="List clusters: running, crashed (its controller died; `par start "
        "--restore` brings it back) or stale (nothing serves it; `par clean` removes it), "
        "and the engines registered with each.",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="a table (text, the default) or JSON for scripts",
    )
    args = parser.parse_args(argv)
    rows = [_cluster_row(cid) for cid in paths.list_cluster_ids()]
    if args.output == "json":
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("par: no clusters (start one with `par start`)")
        return 0
    print(f"{'CLUSTER ID':<24} {'STATUS':<10} {'ENGINES':>7}  LAUNCHER")
    for r in rows:
        engines = "?" if r["engines"] is None else r["engines"]
        print(f"{r['cluster_id']:<24} {r['status']:<10} {engines:>7}  {r['launcher']}")
    if any(r["status"] != "running" for r in rows):
        print("par: `par clean` removes the clusters nothing serves any more", file=sys.stderr)
    return 0


def cmd_clean(argv: Sequence[str]) -> int:
    """``par clean``: remove the clusters nothing serves any more."""
    parser = argparse.ArgumentParser(
        prog="par clean",
        description="Remove the clusters nothing serves any more: no controller, no engine "
        "(a controller killed, a machine restarted). Their task databases, and after a crash "
        "their logs, are kept aside as `par stop` keeps them. Running clusters are left alone.",
    )
    parser.parse_args(argv)
    from .cluster.stale import clean

    cleaned = clean()
    for c in cleaned:
        verb = "removed" if c.removed else "left"
        print(f"par: {verb} cluster {c.cluster_id!r}: {c.reason}")
        if c.kept is not None:
            kept = ", ".join(sorted(p.name for p in c.kept.iterdir()))
            print(f"par: what it left ({kept}) is kept in {c.kept}")
    if not cleaned:
        print("par: nothing to clean")
    return 0


# ---- par controller / engine / launchers / monitor ---------------------------------------------


def cmd_controller(argv: Sequence[str]) -> int:
    """``par controller``: run a controller in the foreground."""
    from .controller.__main__ import run

    return run(argv, announce=True)


def cmd_engine(argv: Sequence[str]) -> int:
    """``par engine``: run one engine in the foreground."""
    from .engine.__main__ import run

    sys.argv = ["par engine", *argv]
    return run()


def cmd_launchers(argv: Sequence[str]) -> int:
    """``par launchers``: list installed launchers."""
    parser = argparse.ArgumentParser(prog="par launchers", description="List installed launchers.")
    parser.parse_args(argv)
    from .plugins import PluginError, plugins

    try:
        found = plugins().launchers()
    except PluginError as exc:
        _fail(str(exc))
    print(f"{'NAME':<10} {'KIND':<11} {'PACKAGE':<22} {'VERSION':<9} OPTIONS")
    for kind, info in found:
        opts = " ".join(o.flag for o in info.cls.OPTIONS) or "-"
        print(f"{info.cls.PLUGIN_NAME:<10} {kind:<11} {info.package:<22} {info.version:<9} {opts}")
    for name, err in sorted(plugins().errors.items()):
        print(f"{name:<10} {'BROKEN':<11} {err}")
    return 0


def cmd_monitor(argv: Sequence[str]) -> int:
    """``par monitor``: the terminal UI (from the par-tui package)."""
    try:
        from par_tui.cli import main as monitor_main
    except ImportError:
        _fail("`par monitor` needs the par-tui package: pip install par-tui")
    return int(monitor_main(list(argv)))


COMMANDS = {
    "start": (cmd_start, "start a controller and engines"),
    "stop": (cmd_stop, "stop a running cluster"),
    "list": (cmd_list, "list clusters"),
    "clean": (cmd_clean, "remove the clusters nothing serves any more"),
    "engines": (cmd_engines, "add engines to a running cluster"),
    "controller": (cmd_controller, "run a controller in the foreground"),
    "engine": (cmd_engine, "run one engine in the foreground"),
    "launchers": (cmd_launchers, "list installed launcher plugins"),
    "monitor": (cmd_monitor, "watch a cluster live in the terminal"),
}


def _usage() -> str:
    lines = ["usage: par COMMAND [options]   (par COMMAND --help for each)", "", "commands:"]
    lines += [f"  {name:<11} {desc}" for name, (_, desc) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``par`` command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else EXIT_USAGE
    if args[0] == "--version":
        from . import __version__

        print(f"par {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(
            f"par: error: unknown command {name!r}; commands: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return COMMANDS[name][0](rest)
    except CLIError as exc:
        print(f"par {name}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
