"""Exceptions a user of par sees, named as ipyparallel names them."""

from __future__ import annotations

import builtins
from typing import Any

TimeoutError = builtins.TimeoutError


class ParError(Exception):
    """Base class of par's own errors."""


class ClusterError(ParError):
    """A cluster could not be found, started, reached or stopped."""


class NoEnginesRegistered(ParError):
    """The request needs engines and none are registered (try ``rc.wait_for_engines``)."""


class RemoteError(ParError):
    """An exception raised on an engine, with its type, message and traceback text."""

    def __init__(
        self,
        ename: str,
        evalue: str,
        traceback: str = "",
        engine_info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(ename, evalue)
        self.ename = ename
        self.evalue = evalue
        self.traceback = traceback
        self.engine_info = engine_info or {}

    @property
    def engine_id(self) -> int | None:
        """The id of the engine the error happened on, if known."""
        return self.engine_info.get("engine_id")

    def __str__(self) -> str:
        where = f"[{self.engine_id}:{self.engine_info.get('method', 'apply')}]"
        return f"{where} {self.ename}: {self.evalue}"

    def render_traceback(self) -> list[str]:
        """The remote traceback as a list of lines."""
        return (self.traceback or str(self)).splitlines()

    def print_traceback(self) -> None:
        """Print the remote traceback."""
        print("\n".join(self.render_traceback()))

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a local traceback
        return self.render_traceback()


class EngineError(RemoteError):
    """The engine died or left while running (or holding) the task."""


class ControllerLost(RemoteError):
    """The controller stopped answering while the request was outstanding."""


class TaskAborted(RemoteError):
    """The task was aborted before it started."""


class TaskRejectError(RemoteError):
    """Raise this inside a load-balanced task to have it run on another engine instead."""

    def __init__(self, reason: str = "task rejected by this engine") -> None:
        super().__init__("TaskRejectError", reason)


class UnmetDependency(RemoteError):
    """A task's dependencies were not met."""


class ImpossibleDependency(UnmetDependency):
    """A task's dependencies can never be met (a dependency failed, or no engine can run it)."""


class DependencyTimeout(ImpossibleDependency):
    """A task's dependencies were not met within its ``timeout``."""


class TaskTimeout(DependencyTimeout):
    """A load-balanced task's ``timeout`` passed before it could start (its dependencies
    were not met in time), as ipyparallel's ``TaskTimeout``; still a ``DependencyTimeout``."""


class InvalidDependency(ImpossibleDependency):
    """A task depends on a message id the controller does not know."""


class CompositeError(RemoteError):
    """Errors from several engines (or tasks), one ``RemoteError`` each."""

    tb_limit = 4

    def __init__(self, message: str, elist: list[RemoteError]) -> None:
        super().__init__("CompositeError", message)
        self.elist = elist
        self.msg = message

    def __str__(self) -> str:
        lines = [f"{self.msg}"]
        for err in self.elist[: self.tb_limit]:
            lines.append(str(err))
        if len(self.elist) > self.tb_limit:
            lines.append(f"... {len(self.elist) - self.tb_limit} more exceptions ...")
        return "\n".join(lines)

    def render_traceback(self, excid: int | None = None) -> list[str]:
        """Tracebacks of all (or one) of the errors."""
        chosen = self.elist if excid is None else [self.elist[excid]]
        lines: list[str] = []
        for err in chosen:
            lines.append(str(err))
            lines.extend(err.render_traceback())
            lines.append("")
        return lines

    def print_traceback(self, excid: int | None = None) -> None:
        """Print the tracebacks of all (or one) of the errors."""
        print("\n".join(self.render_traceback(excid)))

    def raise_exception(self, excid: int = 0) -> None:
        """Raise one of the collected errors."""
        raise self.elist[excid]


_BY_NAME: dict[str, type[RemoteError]] = {
    "EngineError": EngineError,
    "TaskAborted": TaskAborted,
    "ControllerLost": ControllerLost,
    "UnmetDependency": UnmetDependency,
    "ImpossibleDependency": ImpossibleDependency,
    "DependencyTimeout": DependencyTimeout,
    "TaskTimeout": TaskTimeout,
    "InvalidDependency": InvalidDependency,
}


def remote_error_from(content: dict[str, Any], engine_id: int | None, method: str) -> RemoteError:
    """Build the right ``RemoteError`` subclass from an error reply's content."""
    ename = str(content.get("ename", "Error"))
    info = {"engine_id": engine_id, "method": method}
    cls = _BY_NAME.get(ename, RemoteError)
    return cls(ename, str(content.get("evalue", "")), str(content.get("traceback", "")), info)
