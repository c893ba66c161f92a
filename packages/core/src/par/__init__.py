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
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("par-core")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

_EXPORTS = {
    "Client": "par.client.client",
    "DirectView": "par.client.view",
    "LoadBalancedView": "par.client.view",
    "AsyncResult": "par.client.asyncresult",
    "AsyncMapResult": "par.client.asyncresult",
    "Cluster": "par.cluster",
    "RemoteError": "par.errors",
    "CompositeError": "par.errors",
    "EngineError": "par.errors",
    "TaskAborted": "par.errors",
    "NoEnginesRegistered": "par.errors",
    "ClusterError": "par.errors",
    "TimeoutError": "par.errors",
    "hookimpl": "par.hookspecs",
    "interactive": "par.functions",
}

__all__ = [
    "AsyncMapResult",
    "AsyncResult",
    "Client",
    "Cluster",
    "ClusterError",
    "CompositeError",
    "DirectView",
    "EngineError",
    "LoadBalancedView",
    "NoEnginesRegistered",
    "RemoteError",
    "TaskAborted",
    "TimeoutError",
    "hookimpl",
    "interactive",
]

if TYPE_CHECKING:
    from .client.asyncresult import AsyncMapResult, AsyncResult
    from .client.client import Client
    from .client.view import DirectView, LoadBalancedView
    from .cluster import Cluster
    from .errors import (
        ClusterError,
        CompositeError,
        EngineError,
        NoEnginesRegistered,
        RemoteError,
        TaskAborted,
        TimeoutError,
    )
    from .functions import interactive
    from .hookspecs import hookimpl


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'par' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
