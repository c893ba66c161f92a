"""joblib on par engines: ``par.register_joblib_backend()``, then
``with joblib.parallel_config(backend="par"): joblib.Parallel()(...)``.

Each batch joblib forms is one load-balanced task (see
:mod:`par.joblib_backend`). Without a view the backend connects to the
running default cluster (``par start``) for the duration of each
``Parallel`` call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .client.client import Client
from .joblib_backend import register_backend

if TYPE_CHECKING:
    from .client.view import View


def register_joblib_backend(
    name: str | None = None, make_default: bool = False, view: View | None = None
) -> None:
    """Make ``name`` a joblib backend that runs on par engines (on ``view``, if given).

    Without a name the backend is registered as both ``"par"`` and ``"ipyparallel"``.
    Options of ``parallel_config(backend=name, view=...)`` override ``view``.
    """
    register_backend(name, make_default, view, connect=_default_cluster)


def _default_cluster() -> tuple[View, Callable[[], None]]:
    """A load-balanced view of the running default cluster, and how to disconnect."""
    client = Client()
    return client.load_balanced_view(), client.close
