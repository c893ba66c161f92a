"""Exceptions a user of par sees, named as ipyparallel names them."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, NamedTuple

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
        return f"{_where(self.engine_info)} {self.ename}: {self.evalue}"

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
    """The controller stopped answering while the request was outstanding (or the relay
    process of its direct path ended with the request or its reply in it, or the engine's
    direct connection dropped with them on it)."""


class ClientClosed(RemoteError):
    """The client was closed while the request was outstanding. The task still runs on
    the cluster: another client's ``get_result(msg_id)`` fetches its result."""


class ControllerError(RemoteError):
    """The controller refused a request (an unknown task, a bad query...): ``ename`` and
    ``evalue`` are the exception it raised there, ``op`` the request, as ipyparallel raises
    its hub's errors as RemoteErrors."""

    def __init__(self, op: str, ename: str, evalue: str) -> None:
        super().__init__(ename, evalue, engine_info={"method": op})
        self.op = op

    def __str__(self) -> str:
        return f"{self.op} failed on the controller: {self.ename}: {self.evalue}"

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.op, self.ename, self.evalue)


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


class ErrorInfo(NamedTuple):
    """One error of a :class:`CompositeError`, the 4-tuple ipyparallel's ``elist`` holds."""

    ename: str
    evalue: str
    traceback: str
    engine_info: dict[str, Any]


class CompositeError(RemoteError):
    """Errors from several engines (or tasks): ``elist`` holds one :class:`ErrorInfo` each.

    Its text and its rendered traceback show the first ``tb_limit`` errors, then
    how many more there are.
    """

    tb_limit = 4

    def __init__(self, message: str, elist: Sequence[RemoteError | tuple[Any, ...]]) -> None:
        super().__init__("CompositeError", message)
        self.msg = message
        self.elist = [  # tuples come from another CompositeError's elist, when nested
            ErrorInfo(*e)
            if isinstance(e, tuple)
            else ErrorInfo(e.ename, e.evalue, e.traceback, e.engine_info)
            for e in elist
        ]

    def _more(self) -> list[str]:
        hidden = len(self.elist) - self.tb_limit
        return [f"... {hidden} more exceptions ..."] if hidden > 0 else []

    def __str__(self) -> str:
        lines = [self.msg]
        for info in self.elist[: self.tb_limit]:
            lines.append(f"{_where(info.engine_info)} {info.ename}: {info.evalue}")
        return "\n".join(lines + self._more())

    def render_traceback(self, excid: int | None = None) -> list[str]:
        """Tracebacks of one of the errors, or of the first ``tb_limit`` of them."""
        if excid is not None:
            return _error_from(self.elist[excid]).render_traceback()
        lines: list[str] = []
        for info in self.elist[: self.tb_limit]:
            err = _error_from(info)
            lines += [str(err), *err.render_traceback(), ""]
        return lines + self._more()

    def print_traceback(self, excid: int | None = None) -> None:
        """Print the tracebacks of one of the errors, or of the first ``tb_limit``."""
        print("\n".join(self.render_traceback(excid)))

    def raise_exception(self, excid: int = 0) -> None:
        """Raise one of the collected errors, as the ``RemoteError`` it was."""
        raise _error_from(self.elist[excid])


def _where(engine_info: dict[str, Any]) -> str:
    return f"[{engine_info.get('engine_id')}:{engine_info.get('method', 'apply')}]"


def _error_from(info: ErrorInfo) -> RemoteError:
    return _BY_NAME.get(info.ename, RemoteError)(*info)


_BY_NAME: dict[str, type[RemoteError]] = {
    "EngineError": EngineError,
    "TaskAborted": TaskAborted,
    "ControllerLost": ControllerLost,
    "ClientClosed": ClientClosed,
    "UnmetDependency": UnmetDependency,
    "ImpossibleDependency": ImpossibleDependency,
    "DependencyTimeout": DependencyTimeout,
    "TaskTimeout": TaskTimeout,
    "InvalidDependency": InvalidDependency,
}


def remote_error_from(content: dict[str, Any], engine_id: int | None, method: str) -> RemoteError:
    """Build the right ``RemoteError`` subclass from an error reply's content.

    ``engine_info`` has ipyparallel's keys; ``engine_uuid`` is None for an error the
    controller reports (an engine lost or a task aborted before it got one).
    """
    ename = str(content.get("ename", "Error"))
    info = {"engine_id": engine_id, "engine_uuid": content.get("engine_uuid"), "method": method}
    evalue, tb = str(content.get("evalue", "")), str(content.get("traceback", ""))
    return _error_from(ErrorInfo(ename, evalue, tb, info))
