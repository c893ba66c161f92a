"""Launcher base classes: what a launcher plugin implements.

A launcher starts and stops one resource of a cluster: its controller, or
one *set* of engines (a cluster may have several sets, from different
launchers). It must be restorable from the dict :meth:`to_dict` returns,
in another process, so that ``par stop`` works from any terminal.

Everything a launcher is told about its cluster comes in its
:class:`LaunchContext`, including where its lifecycle events go
(``on_event``: the cluster hands them to plugins), so this module knows
nothing of the plugin machinery that finds launchers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

EVENTS_FILE = "events.jsonl"


def read_events(cluster_dir: Path, last: int = 100) -> list[dict[str, Any]]:
    """The last launcher lifecycle events recorded for a cluster."""
    try:
        lines = (cluster_dir / EVENTS_FILE).read_text().splitlines()[-last:]
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


class LauncherError(Exception):
    """A launcher could not start or stop what it manages; the message says why."""


@dataclass(frozen=True)
class Option:
    """A typed launcher option, shown by ``par start --launcher NAME --help``."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def flag(self) -> str:
        """The command-line flag for this option."""
        return "--" + self.name.replace("_", "-")


def _ignore(event: dict[str, Any]) -> None:
    """Where a context's events go when nobody listens (beside ``events.jsonl``)."""


@dataclass
class LaunchContext:
    """What every launcher is told about the cluster it serves; ``on_event`` is called with
    each lifecycle event the launcher emits. ``owner``: the pid of the process that is to
    stop the cluster when it exits (``shutdown_atexit``), for a controller on its machine
    to watch (``par controller --owner``); None for a cluster no process owns."""

    cluster_id: str
    cluster_dir: Path
    connection_file: Path
    python: str = sys.executable
    on_event: Callable[[dict[str, Any]], None] = _ignore
    owner: int | None = None


def check_module_names(value: str, option: str = "preload") -> str:
    """``value`` if it is a comma-separated list of module names; else a ValueError that
    names the wrong one."""
    for name in filter(None, (m.strip() for m in value.split(","))):
        if not all(part.isidentifier() for part in name.split(".")):
            raise ValueError(
                f"{option}: {name!r} is not a module name; give module names separated by "
                "commas, e.g. numpy,pandas"
            )
    return value


class Launcher:
    """Shared base of controller and engine-set launchers."""

    PLUGIN_NAME: ClassVar[str] = ""
    KIND: ClassVar[str] = ""
    OPTIONS: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, context: LaunchContext, **options: Any) -> None:
        self.context = context
        known = {o.name: o for o in self.OPTIONS}
        unknown = set(options) - set(known)
        if unknown:
            names = ", ".join(sorted(known)) or "none"
            raise TypeError(
                f"{self.PLUGIN_NAME} launcher: unknown option(s) {', '.join(sorted(unknown))}; "
                f"it accepts: {names}"
            )
        self.options = {name: options.get(name, o.default) for name, o in known.items()}

    def start(self) -> None:
        """Start what this launcher manages; return once it is starting (or raise LauncherError)."""
        raise NotImplementedError

    def stop(self, timeout: float = 10.0) -> None:
        """Stop everything this launcher started; leave no process behind."""
        raise NotImplementedError

    def signal(self, sig: int) -> None:
        """Send a signal to the processes this launcher started."""
        raise NotImplementedError

    def running(self) -> bool:
        """True while any process this launcher started is alive."""
        raise NotImplementedError

    def output(self, lines: int = 20) -> str:
        """The last lines of what the launched processes printed (for error messages)."""
        return ""

    def emit(self, event: str, **details: Any) -> None:
        """Report a lifecycle event: to the cluster's ``events.jsonl``, and to the context's
        ``on_event`` (for a cluster, every plugin's ``par_launcher_event``)."""
        record = {
            "time": time.time(),
            "cluster_id": self.context.cluster_id,
            "launcher": self.PLUGIN_NAME,
            "kind": self.KIND,
            "event": event,
            **details,
        }
        path = self.context.cluster_dir / EVENTS_FILE
        if path.parent.exists():
            with open(path, "a") as f:
                f.write(json.dumps(record, default=str) + "\n")
        self.context.on_event(record)

    def to_dict(self) -> dict[str, Any]:
        """State to restore this launcher in another process (JSON-ready)."""
        return {"options": self.options}

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Rebuild a launcher from :meth:`to_dict` output."""
        return cls(context, **data.get("options", {}))


def _said(output: str) -> str:
    """A process's output as the tail of an error: inline if one line (a controller that
    refuses its arguments says why in one), else on lines of its own."""
    output = output.strip()
    if not output:
        return " (it printed nothing)"
    return f": {output}" if "\n" not in output else f"; its output:\n{output}"


class ControllerLauncher(Launcher):
    """Starts and stops a controller; ``start`` returns once the connection file is written."""

    KIND = "controller"

    def __init__(
        self, context: LaunchContext, controller_args: list[str] | None = None, **options: Any
    ) -> None:
        super().__init__(context, **options)
        self.controller_args = list(controller_args or [])

    def connection_file_version(self) -> tuple[int, int] | None:
        """What identifies the connection file now (None: there is none); a controller
        writes a new one, so a launcher that calls this before starting one can tell
        its file from an older one (a restored controller reads the older one first)."""
        try:
            st = self.context.connection_file.stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns

    def wait_for_connection_file(
        self,
        alive: Callable[[], bool],
        timeout: float,
        replacing: tuple[int, int] | None = None,
    ) -> None:
        """Wait until the controller wrote its connection file (one other than the
        ``replacing`` version of :meth:`connection_file_version`); raise with its output
        if it exits first or takes longer than ``timeout`` seconds."""
        path = self.context.connection_file
        deadline = time.monotonic() + timeout
        while (version := self.connection_file_version()) is None or version == replacing:
            if not alive():
                raise LauncherError(f"the controller exited at start{_said(self.output())}")
            if time.monotonic() > deadline:
                raise LauncherError(
                    f"the controller did not write {path} within {timeout:.0f} s"
                    + _said(self.output())
                )
            time.sleep(0.01)

    def controller_command(self) -> list[str]:
        """The command that runs the controller for this cluster."""
        return [
            self.context.python,
            "-m",
            "par.controller",
            "--cluster-id",
            self.context.cluster_id,
            "--file",
            str(self.context.connection_file),
            *self.controller_args,
        ]


def _no_cluster() -> None:
    """:attr:`EngineSetLauncher.save_state` of a launcher used outside a cluster."""


def check_work_dir(work_dir: str) -> str:
    """``work_dir`` as an absolute path if it is a directory on this machine; else a
    ValueError that names it."""
    path = os.path.abspath(os.path.expanduser(work_dir))
    if not os.path.isdir(path):
        what = "is not a directory" if os.path.exists(path) else "does not exist"
        raise ValueError(f"work dir {work_dir!r} {what}: give an existing directory")
    return path


class EngineSetLauncher(Launcher):
    """Starts and stops a set of ``n`` engines.

    ``work_dir`` (every launcher takes it, besides its ``OPTIONS``): the directory the
    engines run their tasks in, given to each engine in :meth:`engine_arguments`
    (``--work-dir``), so that it reaches the engines whatever starts them; empty: the
    directory they start in. A launcher whose engines run on this machine checks that
    it exists (:attr:`WORK_DIR_HERE`); one whose engines run elsewhere leaves that to
    the engines, which refuse to start in one that does not.
    """

    KIND = "engines"
    WORK_DIR_HERE: ClassVar[bool] = True  # the engines see this machine's directories
    n: int

    def __init__(
        self, context: LaunchContext, n: int = 1, work_dir: str = "", **options: Any
    ) -> None:
        super().__init__(context, **options)
        if n < 1:
            raise ValueError(f"the number of engines must be at least 1, not {n}")
        self.n = n
        self.work_dir = str(work_dir or "")
        # The cluster sets this to write its cluster file. A launcher whose start takes a
        # while calls it as processes start, so that each is on record before the start
        # is over (and a `par stop` meanwhile finds it).
        self.save_state: Callable[[], None] = _no_cluster

    def check_fits(self) -> None:
        """Raise ValueError, in one line, if this set cannot start here: called before any
        of it starts, and before the cluster checks that the controller has room for it.
        The base checks nothing; the local launcher checks this machine's memory."""

    def running_count(self) -> int:
        """How many engines of this set run (a launcher that cannot count them says
        all of them while any runs)."""
        return self.n if self.running() else 0

    def describe_exit(self, pid: int, lines: int = 5) -> str | None:
        """How an engine of this set ended and its last output, if this launcher knows."""
        return None

    def engine_command(self) -> list[str]:
        """The command that runs one engine of this cluster."""
        return [self.context.python, "-m", "par.engine", *self.engine_arguments()]

    def fork_server_command(
        self, n: int, logs: str, *, python: str = "", connection_file: str = ""
    ) -> list[str]:
        """The command of a fork server that starts ``n`` engines of this cluster from one
        process (:mod:`par.engine.forkserver`); engine ``i`` logs to ``{logs}-{i}.log``
        (``python`` and ``connection_file``: theirs on another host)."""
        return [
            python or self.context.python,
            "-m",
            "par.engine.forkserver",
            *self.engine_arguments(connection_file),
            "-n",
            str(n),
            "--logs",
            logs,
        ]

    def engine_arguments(self, connection_file: str = "") -> list[str]:
        """What every engine of this cluster is given: the connection file
        (``connection_file``: its path on another host), the work dir if set and, if the
        launcher has a ``preload`` option, the modules to import before registering."""
        preload = self.options.get("preload")
        return [
            "--file",
            connection_file or str(self.context.connection_file),
            *(["--work-dir", self.work_dir] if self.work_dir else []),
            *(["--preload", str(preload)] if preload else []),
        ]

    def to_dict(self) -> dict[str, Any]:
        """State to restore this engine set elsewhere."""
        return {"n": self.n, "work_dir": self.work_dir, "options": self.options}

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Rebuild an engine set from :meth:`to_dict` output (a subclass calls this first,
        then restores what it keeps of its own)."""
        options = data.get("options", {})
        return cls(context, n=int(data.get("n", 1)), work_dir=data.get("work_dir", ""), **options)
