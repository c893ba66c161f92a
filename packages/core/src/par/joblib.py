"""joblib on par engines: ``par.register_joblib_backend()``, then
``with joblib.parallel_config(backend="par"): joblib.Parallel()(...)``.

Each batch joblib forms is one load-balanced task. Without a view the
backend connects to the running default cluster (``par start``) for the
duration of each ``Parallel`` call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client.view import View


DEFAULT_NAMES = ("par", "ipyparallel")  # the second so that ipyparallel programs find it


def register_joblib_backend(
    name: str | None = None, make_default: bool = False, view: View | None = None
) -> None:
    """Make ``name`` a joblib backend that runs on par engines (on ``view``, if given).

    Without a name the backend is registered as both ``"par"`` and ``"ipyparallel"``.
    Options of ``parallel_config(backend=name, view=...)`` override ``view``.
    """
    try:
        joblib = importlib.import_module("joblib")
    except ImportError:
        raise ImportError(
            "register_joblib_backend needs joblib on the client and the engines: pip install joblib"
        ) from None
    backend_class = _backend_class()

    def make_backend(**kwargs: Any) -> Any:
        kwargs.setdefault("view", view)
        return backend_class(**kwargs)

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

        def __init__(self, view: View | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._given_view = view
            self._view: View | None = view
            self._client: Any = None

        @property
        def view(self) -> View:
            """The view tasks go to (connecting to the default cluster if none was given)."""
            if self._view is None:
                from .client.client import Client

                self._client = Client()
                self._view = self._client.load_balanced_view()
            return self._view

        def effective_n_jobs(self, n_jobs: int | None) -> int:
            """One worker per engine of the view."""
            return max(len(self.view), 1)  # type: ignore[arg-type]

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
            """Close the client this backend opened itself (engines keep running)."""
            super().terminate()
            if self._client is not None:
                self._client.close()
                self._client = None
                self._view = self._given_view

    return ParBackend
