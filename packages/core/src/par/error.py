"""par's exceptions at the path ipyparallel programs import them from.

``from ipyparallel.error import RemoteError`` becomes ``from par.error import RemoteError``.
The exceptions live in :mod:`par.errors`; this module only names them again.
"""

from __future__ import annotations

from .errors import (
    ClientClosed,
    ClusterError,
    CompositeError,
    ControllerError,
    ControllerLost,
    DependencyTimeout,
    EngineError,
    ImpossibleDependency,
    InvalidDependency,
    NoEnginesRegistered,
    ParError,
    RemoteError,
    TaskAborted,
    TaskRejectError,
    TaskTimeout,
    TimeoutError,
    UnmetDependency,
)

__all__ = [
    "ClientClosed",
    "ClusterError",
    "CompositeError",
    "ControllerError",
    "ControllerLost",
    "DependencyTimeout",
    "EngineError",
    "ImpossibleDependency",
    "InvalidDependency",
    "NoEnginesRegistered",
    "ParError",
    "RemoteError",
    "TaskAborted",
    "TaskRejectError",
    "TaskTimeout",
    "TimeoutError",
    "UnmetDependency",
]
