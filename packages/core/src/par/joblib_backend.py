"""The joblib backend whose workers are par engines: each batch is one load-balanced task.

Built on joblib's own base classes, so joblib is imported only when a backend
is registered. A backend runs on the view it is given, or on one it connects
to for the duration of a ``Parallel`` call (see :mod:`par.joblib`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client.view import View

Connect = Callable[[], tuple["View", Callable[[], None]]]  # a view, and how to let it go


DEFAULT_NAMES = ("par", "ipyparallel")  # the second so that ipyparallel programs find it


def register_backend(
    name: str | None,
    make_default: bool,
    view: View | None = None,
    connect: Connect | None = None,
) -> None:
    """Make ``name`` (None: both ``DEFAULT_NAMES``) a joblib backend running on ``view``, or on
    the view ``connect()`` opens for each ``Parallel`` call. Options of
    ``parallel_config(backend=name, view=...)`` override ``view``."""
    try:
        joblib = importlib.import_module("joblib")
    except ImportError:
        raise ImportError(
            "register_joblib_backend needs joblib on the client and the engines: pip install joblib"
        ) from None
    backend_class = _backend_class()

    def make_backend(**kwargs: Any) -> Any:
        kwargs.setdefault("view", view)
        return backend_class(connect=connect, **kwargs)

    for each in (name,) if name else DEFAULT_NAMES:
        joblib.register_parallel_backend(each, make_backend, make_default=make_default)


def _backend_class() -> type:
    """The backend class, built on joblib's bases (joblib is imported only when used)."""
    backends = importlib.import_module("joblib._parallel_backends")

    mixin: Any = backends.AutoBatchingMixin
    base: Any = backends.ParallelBackendBase

    class ParBackend(mixin, base):
        """A joblib backend whose workers are par engines."""

        supports_retrieve_callback = True
        supports_timeout = True

        def __init__(
            self, view: View | None = None, connect: Connect | None = None, **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self._given_view = view
            self._view: View | None = view
            self._connect = connect
            self._release: Callable[[], None] | None = None

        @property
        def view(self) -> View:
            """The view tasks go to (connecting, if none was given)."""
            if self._view is None:
                if self._connect is None:
                    raise RuntimeError("this joblib backend has neither a view nor a cluster")
                self._view, self._release = self._connect()
            return self._view

        def effective_n_jobs(self, n_jobs: int | None) -> int:
            """One worker per engine of the view."""
            return max(len(self.view), 1)

        def submit(self, func: Any, callback: Any = None) -> Any:
            """Run one batch as a task."""
            ar = self.view.apply_async(func)
            if callback is not None:
                ar.add_done_callback(callback)
            return ar

        def retrieve_result_callback(self, out: Any) -> Any:
            """The batch's results (raising the remote error)."""
            return out.get()

        def abort_everything(self, ensure_ready: bool = True) -> None:
            """Abort the tasks of this backend's view that have not started."""
            if self._view is not None:
                self._view.abort()

        def terminate(self) -> None:
            """Let go of the view this backend connected to itself (engines keep running)."""
            super().terminate()
            if self._release is not None:
                self._release()
                self._release = None
                self._view = self._given_view

    return ParBackend
