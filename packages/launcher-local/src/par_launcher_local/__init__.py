"""par launcher plugin ``local``: the controller and engines as processes on this machine.

Engines are forked from a fork server (:mod:`par.engine.forkserver`) where the
platform can fork (Linux, macOS): one process imports par and the ``preload``
modules, then forks each engine, so that starting many engines costs a fork
each rather than an interpreter and its imports. With ``fork=False`` each
engine is an interpreter of its own.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from par.hookspecs import hookimpl
from par.launcher import (
    ControllerLauncher,
    EngineSetLauncher,
    LaunchContext,
    LauncherError,
    Option,
    check_module_names,
)
from par.process import (
    ProcessRef,
    forked_engines,
    spawn,
    start_fork_server,
    stop_all,
    tail,
)

from . import capacity

if TYPE_CHECKING:
    from par.plugins import LauncherRegistry

__all__ = ["LocalControllerLauncher", "LocalEngineSetLauncher"]

CAN_FORK = hasattr(os, "fork") and sys.platform.startswith(("linux", "darwin"))
FORK_TIMEOUT = 120.0  # seconds a fork server gets to import and fork all its engines
EXIT_RECORD_WAIT = 2.0  # seconds a fork server gets to record how an engine just ended


class LocalControllerLauncher(ControllerLauncher):
    """Runs ``par controller`` as a local process."""

    PLUGIN_NAME = "local"
    OPTIONS = (
        Option("ip", str, "127.0.0.1", "address the controller listens on ('0.0.0.0': all)"),
        Option(
            "location", str, "", "host name engines use to reach the controller (with ip 0.0.0.0)"
        ),
        Option("start_timeout", float, 30.0, "seconds to wait for the controller to come up"),
    )

    def __init__(self, context: LaunchContext, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self.process: ProcessRef | None = None

    def start(self) -> None:
        """Start the controller and wait for its connection file."""
        log = self.context.cluster_dir / "logs" / "controller.log"
        cmd = [*self.controller_command(), "--ip", str(self.options["ip"])]
        if self.options["location"]:
            cmd += ["--location", str(self.options["location"])]
        if self.context.owner is not None:  # its end stops the cluster (controller/owner.py)
            cmd += ["--owner", str(self.context.owner)]
        before = self.connection_file_version()  # a restored controller reads it first
        self.process = process = spawn(cmd, log)
        self.wait_for_connection_file(
            process.alive, float(self.options["start_timeout"]), replacing=before
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the controller process."""
        if self.process is not None:
            stop_all([self.process], timeout)

    def signal(self, sig: int) -> None:
        """Signal the controller process."""
        if self.process is not None:
            self.process.signal(sig)

    def running(self) -> bool:
        """True while the controller process lives."""
        return self.process is not None and self.process.alive()

    def output(self, lines: int = 20) -> str:
        """The controller's last log lines."""
        return tail(self.process.log, lines) if self.process else ""

    def to_dict(self) -> dict[str, Any]:
        """PID, start time and log of the controller."""
        return {**super().to_dict(), "process": self.process.to_dict() if self.process else None}

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Restore from :meth:`to_dict` output."""
        self = cls(context, **data.get("options", {}))
        if data.get("process"):
            self.process = ProcessRef.from_dict(data["process"])
        return self


class LocalEngineSetLauncher(EngineSetLauncher):
    """Runs ``n`` engines as local processes, forked from one warm process by default.

    A count this machine cannot hold is refused (see :mod:`.capacity`) unless
    ``force``. With ``fork``, a fork server (:mod:`par.engine.forkserver`) forks
    every engine; without, engines start as interpreters of their own in waves of
    :data:`WAVE` (four per core), a wave every :data:`WAVE_PAUSE` seconds, so that a
    large count does not start every interpreter at once. Each engine is on record
    from the moment it is started, so a start that fails or is interrupted half way
    leaves none behind. A subclass whose ``OPTIONS`` lack ``fork`` spawns its
    engines (with its own :meth:`engine_command`).
    """

    PLUGIN_NAME = "local"
    OPTIONS = (
        Option("force", bool, False, "start more engines than this machine seems to hold"),
        Option(
            "fork",
            bool,
            CAN_FORK,
            "fork the engines from one process that imports par once (--no-fork: start "
            "each as a new interpreter)",
        ),
        Option(
            "preload",
            str,
            "",
            "modules each engine imports before it registers, e.g. numpy,pandas "
            "(with fork: imported once, shared by all)",
        ),
    )
    WAVE = 4 * (os.cpu_count() or 1)
    WAVE_PAUSE = 0.25
    # Seconds between records of the engines forked so far: each record writes them all,
    # so one a wave made starting 1,000 engines quadratic (5 s of the 8 s to fork 600).
    SAVE_EVERY = 0.5

    def __init__(self, context: LaunchContext, n: int = 1, **kwargs: Any) -> None:
        super().__init__(context, n=n, **kwargs)
        if self.options.get("fork") and not CAN_FORK:
            raise ValueError(
                f"fork: engines cannot be forked on {sys.platform} (Linux and macOS only); "
                "start them with fork=False (--no-fork)"
            )
        check_module_names(self.options.get("preload", ""))
        self.processes: list[ProcessRef] = []
        self.server: ProcessRef | None = None  # the fork server, while its engines live

    def check_fits(self) -> None:
        """Refuse a count this machine cannot hold (see capacity.py), unless ``force``."""
        if not self.options.get("force"):  # a subclass with OPTIONS of its own may lack it
            capacity.check(self.n, forked=bool(self.options.get("fork")))

    def start(self) -> None:
        """Start the engines (they register with the controller on their own)."""
        logs = self.context.cluster_dir / "logs"
        stamp = int(time.time() * 1000)
        self.processes = []
        if self.options.get("fork"):
            self._fork(logs, stamp)
        else:
            self._spawn(logs, stamp)

    def _spawn(self, logs: Path, stamp: int) -> None:
        """Start each engine as an interpreter of its own, in waves."""
        for i in range(self.n):
            if i and i % self.WAVE == 0:
                self.save_state()
                time.sleep(self.WAVE_PAUSE)
            try:
                self.processes.append(
                    spawn(self.engine_command(), logs / f"engine-{stamp}-{i}.log")
                )
            except OSError as exc:
                raise LauncherError(
                    f"could not start engine {i + 1} of {self.n}: {exc.strerror or exc}"
                ) from exc

    def _fork(self, logs: Path, stamp: int) -> None:
        """Start a fork server and record the engines it forks as it reports them."""
        command = self.fork_server_command(self.n, str(logs / f"engine-{stamp}"))
        self.server, reports = start_fork_server(command, logs / f"forkserver-{stamp}.log")
        self.save_state()  # a `par stop` meanwhile ends its engines by the server's mark
        saved = time.monotonic()
        for engine in forked_engines(self.server, reports, self.n, FORK_TIMEOUT):
            self.processes.append(engine)
            if time.monotonic() - saved >= self.SAVE_EVERY:
                self.save_state()
                saved = time.monotonic()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every engine of this set (and its fork server)."""
        stop_all([*self.processes, *([self.server] if self.server else [])], timeout)

    def signal(self, sig: int) -> None:
        """Signal every engine of this set."""
        for p in self.processes:
            p.signal(sig)

    def running(self) -> bool:
        """True while any engine of this set lives."""
        return any(p.alive() for p in self.processes)

    def running_count(self) -> int:
        """How many engines of this set live."""
        return sum(p.alive() for p in self.processes)

    def output(self, lines: int = 20) -> str:
        """The last log lines of engines that have exited."""
        dead = [p for p in self.processes if not p.alive()] or self.processes[:1]
        return "\n".join(f"[engine pid {p.pid}]\n{tail(p.log, lines)}" for p in dead[:3])

    def describe_exit(self, pid: int, lines: int = 5) -> str | None:
        """How one of these engines ended, and the last lines of its log."""
        for p in self.processes:
            if p.pid == pid:
                how = p.exit_description(wait=EXIT_RECORD_WAIT) or (
                    "is still running but does not answer" if p.alive() else "has ended"
                )
                return f"the process {how}; its last output:\n{tail(p.log, lines)}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """Engine count, the engine processes and their fork server."""
        return {
            **super().to_dict(),
            "processes": [p.to_dict() for p in self.processes],
            "fork_server": self.server.to_dict() if self.server else None,
        }

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Restore from :meth:`to_dict` output."""
        self = super().from_dict(context, data)
        self.processes = [ProcessRef.from_dict(p) for p in data.get("processes", [])]
        if data.get("fork_server"):
            self.server = ProcessRef.from_dict(data["fork_server"])
        return self


@hookimpl
def par_register_launchers(register: LauncherRegistry) -> None:
    """Provide the ``local`` controller and engine launchers."""
    register(LocalControllerLauncher)
    register(LocalEngineSetLauncher)
