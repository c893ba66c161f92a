"""What every view shares: flags, blocking and non-blocking calls, and what it sent.

A view is the user's way of sending work: a :class:`~par.DirectView`
(``directview.py``) names its engines, a :class:`~par.LoadBalancedView`
(``balancedview.py``) lets the controller pick one per task. Each sends a
call through its client's :class:`~par.client.submit.Submitter` and keeps
the results it sent, for its own ``history``, ``outstanding`` and ``results``.

Work cut into parts takes one path, :meth:`View.send_parts`: ``map``, a
DirectView's ``scatter`` and the functions of :func:`par.parallel` differ
only in how they cut their sequences and join the results back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..decorators import Reference
from ..engine import namespace
from ..executor import ViewExecutor
from .asyncresult import AsyncMapResult, AsyncResult
from .history import BoundedDict, Results
from .remotefunction import ParallelFunction, RemoteFunction, parallel, remote

if TYPE_CHECKING:
    from .client import Client

Parts = list[tuple[Any, ...]]  # the positional arguments of each call of work cut into parts
Split = Callable[[int], Parts]  # cuts the work for a view of so many engines
R = TypeVar("R", bound=AsyncResult)


def name_of(f: Callable[..., Any]) -> str:
    """A function's name, for its results."""
    return getattr(f, "__name__", type(f).__name__)


class View:
    """What all views share: flags, blocking and non-blocking calls, waiting, and what
    this view sent (``history``, ``outstanding``, ``results``)."""

    flag_names: ClassVar[tuple[str, ...]] = ("block", "track", "label")
    load_balanced: ClassVar[bool] = False  # the controller picks an engine for each task

    def __init__(self, client: Client, block: bool | None = None, **flags: Any) -> None:
        self.client = client
        self.block = client.block if block is None else block  # the client's, as it is now
        self.track = False
        self.label: str | None = None
        self._sent_ids = BoundedDict()  # message ids this view sent, latest last (bounded)
        self.set_flags(**flags)

    def __len__(self) -> int:
        """How many engines this view spreads its work over."""
        raise NotImplementedError

    def _record(self, ar: R) -> R:
        """Remember a result this view sent; return it."""
        sent = self._sent_ids
        for mid in ar.msg_ids:
            sent.add(mid, None)
        sent.trim()
        ar.view = self  # its outstanding messages are this view's (no set of its own to keep)
        return ar

    @property
    def history(self) -> list[str]:
        """Message ids this view sent, oldest first (the latest 10,000)."""
        return list(self._sent_ids)

    @property
    def outstanding(self) -> set[str]:
        """Message ids this view sent that still wait for a reply."""
        return {mid for mid, ar in list(self.client.ledger.pending.items()) if ar.view is self}

    @property
    def results(self) -> Results:
        """Finished results of the tasks in ``history``, by message id (while their
        AsyncResults are alive, as the client's)."""
        return Results(self.client.ledger, self._sent_ids)

    def spin(self) -> None:
        """Wait until every reply the controller has sent so far has been taken in."""
        self.client.spin()

    # ---- flags -------------------------------------------------------------------------------

    def check_flags(self, **flags: Any) -> None:
        """Raise (naming it) for a flag this view does not have, or a value it refuses."""
        for key in flags:
            if key not in self.flag_names:
                raise KeyError(f"invalid flag {key!r}; valid flags: {', '.join(self.flag_names)}")

    def set_flags(self, **flags: Any) -> View:
        """Set view flags (``block``, ...); return the view."""
        self.check_flags(**flags)
        for key, value in flags.items():
            setattr(self, key, value)
        return self

    @contextlib.contextmanager
    def temp_flags(self, **flags: Any) -> Iterator[View]:
        """Set flags for the duration of a ``with`` block."""
        saved = {k: getattr(self, k) for k in flags}
        self.set_flags(**flags)
        try:
            yield self
        finally:
            self.set_flags(**saved)

    # ---- calls -------------------------------------------------------------------------------

    def _finish(self, ar: AsyncResult, block: bool | None) -> Any:
        return ar.get() if (self.block if block is None else block) else ar

    def _apply(self, f: Callable[..., Any], args: Any, kwargs: Any) -> AsyncResult:
        raise NotImplementedError

    def _call(self, f: Callable[..., Any] | Reference, args: Any, kwargs: Any) -> AsyncResult:
        """Send ``f(*args, **kwargs)``: a :class:`~par.Reference` to an engine's function
        goes as an argument of :func:`~par.engine.namespace.call`, so that each task looks
        it up afresh (engines keep the functions sent to them)."""
        if isinstance(f, Reference):
            return self._apply(namespace.call, (f, *args), kwargs)
        return self._apply(f, args, kwargs)

    def apply(self, __par_f: Callable[..., Any] | Reference, *args: Any, **kwargs: Any) -> Any:
        """Call ``f(*args, **kwargs)`` remotely; block or not according to ``self.block``.

        ``f`` may be a :class:`~par.Reference` to a function defined on the engines.
        """
        return self._finish(self._call(__par_f, args, kwargs), None)

    def apply_async(
        self, __par_f: Callable[..., Any] | Reference, *args: Any, **kwargs: Any
    ) -> AsyncResult:
        """Call ``f(*args, **kwargs)`` remotely and return an AsyncResult at once."""
        return self._call(__par_f, args, kwargs)

    def apply_sync(self, __par_f: Callable[..., Any] | Reference, *args: Any, **kwargs: Any) -> Any:
        """Call ``f(*args, **kwargs)`` remotely and wait for the result."""
        return self._call(__par_f, args, kwargs).get()

    def send_parts(
        self,
        f: Callable[..., Any],
        split: Split,
        make_result: Callable[[list[str], Parts], R],
        extra: dict[str, Any] | None = None,
    ) -> R:
        """Call ``f`` once for each part of some work, with the part as its arguments:
        ``split(n)`` cuts the work for this view's ``n`` engines, and ``make_result(msg_ids,
        parts)`` makes the result that puts the parts' values together. ``extra``: header
        keys of the requests (``{"mp": 1}``: the engine maps ``f`` over its part).

        The one path of ``map``, ``scatter`` and parallel functions: a DirectView sends
        part ``i`` to its ``i``-th engine, a LoadBalancedView each part as a task.
        """
        raise NotImplementedError

    def map(
        self,
        f: Callable[..., Any],
        *sequences: Any,
        block: bool | None = None,
        return_exceptions: bool = False,
        **kw: Any,
    ) -> Any:
        """Parallel ``map(f, *sequences)``; an AsyncMapResult unless blocking.

        ``return_exceptions=True``: a failed chunk's error takes the place of its values
        (in the list, in ``get()`` and when iterating) instead of being raised.
        """
        return self._finish(self._mapped(f, sequences, return_exceptions, kw), block)

    def map_async(
        self, f: Callable[..., Any], *sequences: Any, return_exceptions: bool = False, **kw: Any
    ) -> AsyncMapResult:
        """Parallel ``map`` returning an AsyncMapResult at once (``return_exceptions`` as
        for :meth:`map`)."""
        return self._mapped(f, sequences, return_exceptions, kw)

    def map_sync(
        self, f: Callable[..., Any], *sequences: Any, return_exceptions: bool = False, **kw: Any
    ) -> list[Any]:
        """Parallel ``map`` that waits for and returns the list of results
        (``return_exceptions`` as for :meth:`map`)."""
        return list(self._mapped(f, sequences, return_exceptions, kw).get())

    def _mapped(
        self, f: Callable[..., Any], sequences: Any, return_exceptions: bool, kw: dict[str, Any]
    ) -> AsyncMapResult:
        ar = self._map(f, sequences, **kw)
        ar.return_exceptions = return_exceptions
        return ar

    def _map(self, f: Callable[..., Any], sequences: Any, **kw: Any) -> AsyncMapResult:
        raise NotImplementedError

    def _map_parts(
        self, f: Callable[..., Any], split: Split, ordered: bool = True
    ) -> AsyncMapResult:
        """A map of ``f`` over the parts ``split`` cuts: on the engine, ``f`` over each part's
        elements; here, the parts' values flattened in order."""
        client, fname = self.client, name_of(f)
        return self.send_parts(
            f,
            split,
            lambda ids, parts: AsyncMapResult(
                client, ids, [len(p[0]) for p in parts], fname, ordered
            ),
            {"mp": 1},
        )

    # ---- waiting and control -----------------------------------------------------------------

    def wait(self, jobs: Any = None, timeout: float = -1) -> bool:
        """Wait for results (all this view's outstanding ones by default); True if all are
        done within ``timeout`` seconds."""
        if jobs is None:
            outstanding = self.client.ledger.outstanding()
            jobs = [ar for ar in outstanding if isinstance(ar, AsyncResult) and ar.view is self]
        return self.client.wait(jobs, timeout)

    def abort(self, jobs: Any = None, targets: Any = None, block: bool | None = None) -> None:
        """Abort tasks that have not started."""
        self.client.abort(jobs, targets, block)

    def queue_status(self, targets: Any = None, verbose: bool = False) -> dict[Any, Any]:
        """Queue counts of this view's engines."""
        return self.client.queue_status(targets if targets is not None else "all", verbose)

    def _own_targets(self) -> Any:
        return getattr(self, "targets", None) or "all"

    def shutdown(
        self,
        targets: Any = None,
        restart: bool = False,
        hub: bool = False,
        block: bool | None = None,
    ) -> None:
        """Stop this view's engines (and the controller too with ``hub=True``)."""
        tg = targets if targets is not None else self._own_targets()
        self.client.shutdown(tg, restart, hub, block)

    def purge_results(self, jobs: Any = (), targets: Any = ()) -> int:
        """Forget finished tasks here and on the controller (see ``Client.purge_results``)."""
        return self.client.purge_results(jobs, targets)

    def get_result(
        self, indices_or_msg_ids: Any = None, block: bool | None = None, owner: bool = True
    ) -> Any:
        """Results of earlier tasks by message id, or by index into this view's ``history``
        (default: its last), as in ipyparallel (see ``Client.get_result``)."""
        jobs = -1 if indices_or_msg_ids is None else indices_or_msg_ids
        history = self.history
        if isinstance(jobs, int):
            jobs = history[jobs]
        elif isinstance(jobs, list | tuple):
            jobs = [history[j] if isinstance(j, int) else j for j in jobs]
        return self.client.get_result(jobs, block, owner)

    # ---- decorators and executor --------------------------------------------------------

    @property
    def executor(self) -> ViewExecutor:
        """A ``concurrent.futures.Executor`` running on this view (shutdown leaves engines up)."""
        return ViewExecutor(self)

    def remote(
        self, block: bool | None = None, **flags: Any
    ) -> Callable[[Callable[..., Any]], RemoteFunction]:
        """Decorator: calling the function runs it on this view (see :func:`par.remote`)."""
        return remote(self, block, **flags)

    def parallel(
        self,
        dist: str = "b",
        block: bool | None = None,
        ordered: bool = True,
        chunksize: int | None = None,
        **flags: Any,
    ) -> Callable[[Callable[..., Any]], ParallelFunction]:
        """Decorator: call the function with sequences to run it on parts of them.

        See :func:`par.parallel`.
        """
        return parallel(self, dist, block, ordered, chunksize, **flags)
