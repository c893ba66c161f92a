"""The view that lets the controller choose: :class:`LoadBalancedView`.

Each call is a task the controller's task scheduler gives to a free engine
(of ``targets``, if set), under the view's flags: ``retries``, ``timeout``
and the ``after`` / ``follow`` dependencies travel in each task's header
(:meth:`LoadBalancedView._header_flags`). A map sends its chunks as tasks
through :meth:`~par.client.view.View.send_parts`; ``imap`` reads its input
lazily and keeps a bounded window of tasks running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from ..dependency import dependency_header
from ..imap import LazyMapIterator
from ..joblib_backend import register_backend
from ..messages import LABEL
from . import partition
from .asyncresult import AsyncMapResult, AsyncResult
from .view import Parts, R, Split, View, name_of

if TYPE_CHECKING:
    from .client import Client


class LoadBalancedView(View):
    """Work sent to whichever engine is free: each task runs once, somewhere.

    Flags: ``targets`` (engines it may use), ``retries`` (run again elsewhere after a
    failure or an engine's death), ``after`` / ``follow`` (time and location
    dependencies: message ids, AsyncResults or a :class:`~par.Dependency`) and
    ``timeout`` (seconds dependencies may take to be met).
    """

    flag_names: ClassVar[tuple[str, ...]] = (
        "block",
        "track",
        "label",
        "targets",
        "retries",
        "timeout",
        "after",
        "follow",
    )
    load_balanced: ClassVar[bool] = True

    def __init__(self, client: Client, block: bool | None = None, **flags: Any) -> None:
        self.targets: Any = None
        self.retries = 0
        self.timeout: float | None = None
        self.after: Any = None
        self.follow: Any = None
        super().__init__(client, block, **flags)

    def check_flags(self, **flags: Any) -> None:
        """Raise (naming it) for a flag this view does not have, or a value it refuses."""
        if "retries" in flags and (not isinstance(flags["retries"], int) or flags["retries"] < 0):
            raise ValueError(f"retries must be a non-negative integer, not {flags['retries']!r}")
        if "timeout" in flags and flags["timeout"] is not None and not flags["timeout"] > 0:
            raise ValueError(
                f"timeout must be a positive number of seconds, not {flags['timeout']!r}"
            )
        for key in ("after", "follow"):
            if key in flags:
                dependency_header(flags[key])  # raises on nonsense now, not at submission
        super().check_flags(**flags)

    def __repr__(self) -> str:
        return (
            "<LoadBalancedView>" if self.targets is None else f"<LoadBalancedView {self.targets}>"
        )

    def __len__(self) -> int:
        """How many engines this view's tasks may go to now."""
        return len(self._allowed() or self.client.ids)

    def _allowed(self) -> list[int] | None:
        return None if self.targets is None else self.client.ledger.targets(self.targets)

    def _header_flags(self) -> dict[str, Any]:
        """The task-header form of this view's flags (only those set)."""
        extra: dict[str, Any] = {}
        allowed = self._allowed()
        if allowed is not None:
            extra["al"] = allowed
        if self.retries:
            extra["rt"] = self.retries
        if self.timeout:
            extra["to"] = float(self.timeout)
        after, follow = dependency_header(self.after), dependency_header(self.follow)
        if after:
            extra["af"] = after
        if follow:
            extra["fo"] = follow
        if self.label is not None:
            extra[LABEL] = str(self.label)
        return extra

    def _apply(self, f: Callable[..., Any], args: Any, kwargs: Any) -> AsyncResult:
        client = self.client
        ar = client.submitter.tasks(
            f,
            [(tuple(args), kwargs)],
            lambda ids: AsyncResult(client, ids, name_of(f)),
            self._header_flags(),
            self.track,
        )
        return self._record(ar)

    def send_parts(
        self,
        f: Callable[..., Any],
        split: Split,
        make_result: Callable[[list[str], Parts], R],
        extra: dict[str, Any] | None = None,
    ) -> R:
        """Call ``f`` with each part of the work as a task (see :meth:`View.send_parts`)."""
        parts = split(len(self))
        ar = self.client.submitter.tasks(
            f,
            [(part, {}) for part in parts],
            lambda ids: make_result(ids, parts),
            {**(extra or {}), **self._header_flags()},
            self.track,
        )
        return self._record(ar)

    def _map(
        self,
        f: Callable[..., Any],
        sequences: Any,
        chunksize: int = 1,
        ordered: bool = True,
        **kw: Any,
    ) -> AsyncMapResult:
        if kw:
            raise TypeError(f"LoadBalancedView.map got unexpected arguments: {', '.join(kw)}")
        if not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"chunksize must be a positive integer, not {chunksize!r}")
        seqs = partition.aligned(sequences)
        return self._map_parts(f, lambda _: partition.chunks(seqs, chunksize), ordered)

    # ---- lazy map and joblib ------------------------------------------------------------

    def imap(
        self,
        f: Callable[..., Any],
        *sequences: Any,
        ordered: bool = True,
        max_outstanding: int | str = "auto",
        return_exceptions: bool = False,
    ) -> LazyMapIterator:
        """Lazy ``map``: input read as needed (even endless), at most ``max_outstanding`` tasks
        running (``'auto'``: one per engine); ``cancel()`` stops it."""
        return LazyMapIterator(self, f, sequences, ordered, max_outstanding, return_exceptions)

    def register_joblib_backend(self, name: str | None = None, make_default: bool = False) -> None:
        """Register this view as joblib's ``name`` backend (:func:`par.register_joblib_backend`).

        Without a name it is registered as both ``"par"`` and ``"ipyparallel"``.
        """
        register_backend(name, make_default, view=self)
