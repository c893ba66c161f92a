"""par: interactive parallel computing for Python.

Start a cluster with ``par start -n 4`` (or ``with par.Cluster(n=4) as rc``),
then drive its engines from Python::

    import par
    rc = par.Client()
    rc[:].apply_sync(lambda: 42)
    rc.load_balanced_view().map_sync(abs, range(-5, 5))

Names are imported lazily so that engines, which import this package,
start fast and small.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Client": "par.client.client",
    "DirectView": "par.client.directview",
    "LoadBalancedView": "par.client.balancedview",
    "BroadcastView": "par.client.directview",
    "Dependency": "par.dependency",
    "TaskRejectError": "par.errors",
    "UnmetDependency": "par.errors",
    "ImpossibleDependency": "par.errors",
    "DependencyTimeout": "par.errors",
    "InvalidDependency": "par.errors",
    "AsyncResult": "par.client.asyncresult",
    "AsyncMapResult": "par.client.asyncresult",
    "Cluster": "par.cluster",
    "ClusterManager": "par.cluster_manager",
    "RemoteError": "par.errors",
    "CompositeError": "par.errors",
    "EngineError": "par.errors",
    "TaskAborted": "par.errors",
    "NoEnginesRegistered": "par.errors",
    "ClusterError": "par.errors",
    "ControllerLost": "par.errors",
    "ClientClosed": "par.errors",
    "TimeoutError": "par.errors",
    "hookimpl": "par.hookspecs",
    "interactive": "par.decorators",
    "remote": "par.client.remotefunction",
    "parallel": "par.client.remotefunction",
    "require": "par.decorators",
    "depend": "par.decorators",
    "dependent": "par.decorators",
    "Reference": "par.decorators",
    "AsyncHubResult": "par.client.hubresult",
    "ViewExecutor": "par.executor",
    "LazyMapIterator": "par.imap",
    "register_joblib_backend": "par.joblib",
    "display": "par.engine.display",
    "TaskTimeout": "par.errors",
    # ipyparallel re-exports these, for AsyncResult.wait(return_when=...)
    "ALL_COMPLETED": "concurrent.futures",
    "FIRST_COMPLETED": "concurrent.futures",
    "FIRST_EXCEPTION": "concurrent.futures",
}
_SUBMODULES = {"datapub", "error"}

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "AsyncHubResult",
    "AsyncMapResult",
    "AsyncResult",
    "BroadcastView",
    "Client",
    "ClientClosed",
    "Cluster",
    "ClusterError",
    "ClusterManager",
    "CompositeError",
    "ControllerLost",
    "Dependency",
    "DependencyTimeout",
    "DirectView",
    "EngineError",
    "ImpossibleDependency",
    "InvalidDependency",
    "LazyMapIterator",
    "LoadBalancedView",
    "NoEnginesRegistered",
    "Reference",
    "RemoteError",
    "TaskAborted",
    "TaskRejectError",
    "TaskTimeout",
    "TimeoutError",
    "UnmetDependency",
    "ViewExecutor",
    "datapub",
    "depend",
    "dependent",
    "display",
    "error",
    "hookimpl",
    "interactive",
    "parallel",
    "register_joblib_backend",
    "remote",
    "require",
]

if TYPE_CHECKING:
    from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION

    from . import datapub, error
    from .client.asyncresult import AsyncMapResult, AsyncResult
    from .client.balancedview import LoadBalancedView
    from .client.client import Client
    from .client.directview import BroadcastView, DirectView
    from .client.hubresult import AsyncHubResult
    from .client.remotefunction import parallel, remote
    from .cluster import Cluster
    from .cluster_manager import ClusterManager
    from .decorators import Reference, depend, dependent, interactive, require
    from .dependency import Dependency
    from .engine.display import display
    from .errors import (
        ClientClosed,
        ClusterError,
        CompositeError,
        ControllerLost,
        DependencyTimeout,
        EngineError,
        ImpossibleDependency,
        InvalidDependency,
        NoEnginesRegistered,
        RemoteError,
        TaskAborted,
        TaskRejectError,
        TaskTimeout,
        TimeoutError,
        UnmetDependency,
    )
    from .executor import ViewExecutor
    from .hookspecs import hookimpl
    from .imap import LazyMapIterator
    from .joblib import register_joblib_backend


def _version() -> str:
    # importlib.metadata costs every engine ~40 ms and megabytes: load it only when asked
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("par-core")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()["__version__"] = value = _version()
        return value
    if name in _SUBMODULES:
        return import_module(f"par.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'par' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])
