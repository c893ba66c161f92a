"""Views: the ways of sending work to engines.

A :class:`DirectView` names its engines and sends one message that the
controller fans out to each; a :class:`LoadBalancedView` lets the
controller's task scheduler choose an engine per task.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dependency import dependency_header
from ..engine import namespace as remote
from . import partition
from .asyncresult import AsyncMapResult, AsyncResult
from .history import BoundedDict, Results

if TYPE_CHECKING:
    from ..decorators import ParallelFunction, RemoteFunction
    from ..executor import ViewExecutor
    from ..imap import LazyMapIterator
    from .client import Client


def _unchanged_serializer() -> None:
    """What ``use_cloudpickle``/``use_dill``/``use_pickle`` run on the engines: nothing."""


def _name(f: Callable[..., Any]) -> str:
    return getattr(f, "__name__", type(f).__name__)


class View:
    """What all views share: flags, blocking and non-blocking calls, waiting, and what
    this view sent (``history``, ``outstanding``, ``results``)."""

    _flag_names: tuple[str, ...] = ("block", "track", "label")

    def __init__(self, client: Client, block: bool = False, **flags: Any) -> None:
        self.client = client
        self.block = block
        self.track = False
        self.label: str | None = None
        self._sent_ids = BoundedDict()  # message ids this view sent, latest last (bounded)
        self._sent: weakref.WeakSet[AsyncResult] = weakref.WeakSet()
        self.set_flags(**flags)

    def _note(self, ar: AsyncResult) -> None:
        """Remember a result this view sent (the client calls this once it is sent)."""
        sent = self._sent_ids
        for mid in ar.msg_ids:
            sent.add(mid, None)
        sent.trim()
        self._sent.add(ar)

    @property
    def history(self) -> list[str]:
        """Message ids this view sent, oldest first (the latest 10,000)."""
        return list(self._sent_ids)

    @property
    def outstanding(self) -> set[str]:
        """Message ids this view sent that still wait for a reply."""
        sent = self._sent
        return {mid for mid, ar in list(self.client._pending.items()) if ar in sent}

    @property
    def results(self) -> Results:
        """Finished results of the tasks in ``history``, by message id (while their
        AsyncResults are alive, as the client's)."""
        return Results(self.client, self._sent_ids)

    def spin(self) -> None:
        """Wait until every reply the controller has sent so far has been taken in."""
        self.client.spin()

    def set_flags(self, **flags: Any) -> View:
        """Set view flags (``block``, ...); return the view."""
        for key, value in flags.items():
            if key not in self._flag_names:
                raise KeyError(f"invalid flag {key!r}; valid flags: {', '.join(self._flag_names)}")
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

    def _finish(self, ar: AsyncResult, block: bool | None) -> Any:
        return ar.get() if (self.block if block is None else block) else ar

    def _apply(self, f: Callable[..., Any], args: Any, kwargs: Any) -> AsyncResult:
        raise NotImplementedError

    def apply(self, __par_f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``f(*args, **kwargs)`` remotely; block or not according to ``self.block``."""
        return self._finish(self._apply(__par_f, args, kwargs), None)

    def apply_async(self, __par_f: Callable[..., Any], *args: Any, **kwargs: Any) -> AsyncResult:
        """Call ``f(*args, **kwargs)`` remotely and return an AsyncResult at once."""
        return self._apply(__par_f, args, kwargs)

    def apply_sync(self, __par_f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``f(*args, **kwargs)`` remotely and wait for the result."""
        return self._apply(__par_f, args, kwargs).get()

    def map(
        self, f: Callable[..., Any], *sequences: Any, block: bool | None = None, **kw: Any
    ) -> Any:
        """Parallel ``map(f, *sequences)``; an AsyncMapResult unless blocking."""
        return self._finish(self._map(f, sequences, **kw), block)

    def map_async(self, f: Callable[..., Any], *sequences: Any, **kw: Any) -> AsyncMapResult:
        """Parallel ``map`` returning an AsyncMapResult at once."""
        return self._map(f, sequences, **kw)

    def map_sync(self, f: Callable[..., Any], *sequences: Any, **kw: Any) -> list[Any]:
        """Parallel ``map`` that waits for and returns the list of results."""
        return list(self._map(f, sequences, **kw).get())

    def _map(self, f: Callable[..., Any], sequences: Any, **kw: Any) -> AsyncMapResult:
        raise NotImplementedError

    def wait(self, jobs: Any = None, timeout: float = -1) -> bool:
        """Wait for results (all this view's outstanding ones by default); True if all are
        done within ``timeout`` seconds."""
        if jobs is None:
            jobs = [ar for ar in list(self._sent) if not ar.done()]
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
        self, indices_or_msg_ids: Any = None, block: bool | None = None, owner: bool = False
    ) -> Any:
        """Results of earlier tasks by message id (see ``Client.get_result``)."""
        return self.client.get_result(indices_or_msg_ids, block, owner)

    # ---- decorators and executor --------------------------------------------------------

    @property
    def executor(self) -> ViewExecutor:
        """A ``concurrent.futures.Executor`` running on this view (shutdown leaves engines up)."""
        from ..executor import ViewExecutor

        return ViewExecutor(self)

    def remote(
        self, block: bool | None = None, **flags: Any
    ) -> Callable[[Callable[..., Any]], RemoteFunction]:
        """Decorator: calling the function runs it on this view (see :func:`par.remote`)."""
        from ..decorators import remote

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
        from ..decorators import parallel

        return parallel(self, dist, block, ordered, chunksize, **flags)


def _check_sequences(sequences: Any) -> list[Any]:
    if not sequences:
        raise TypeError("map needs at least one sequence")
    seqs = [
        s if hasattr(s, "__getitem__") and hasattr(s, "__len__") else list(s) for s in sequences
    ]
    n = min(len(s) for s in seqs)
    return [s[:n] if len(s) != n else s for s in seqs]


class DirectView(View):
    """Work sent to named engines, in order, each engine running every request."""

    _flag_names: tuple[str, ...] = ("block", "track", "label", "targets")

    def __init__(
        self, client: Client, targets: Any = "all", block: bool = False, **flags: Any
    ) -> None:
        self.targets = targets
        super().__init__(client, block, **flags)

    def _resolve(self, targets: Any = None) -> tuple[list[int], bool]:
        targets = self.targets if targets is None else targets
        ids = self.client._build_targets(targets)
        if len(set(ids)) != len(ids):  # each engine answers a request once
            twice = sorted({t for t in ids if ids.count(t) > 1})
            raise ValueError(f"the targets name engines {twice} more than once: name each once")
        return ids, isinstance(targets, int)

    def __len__(self) -> int:
        return len(self._resolve()[0])

    def __repr__(self) -> str:
        return f"<DirectView {self.targets!r}>"

    def _send_apply(
        self,
        f: Callable[..., Any],
        args: Any,
        kwargs: Any,
        targets: Any = None,
        make_ar: Callable[[list[str]], AsyncResult] | None = None,
    ) -> AsyncResult:
        tg, single = self._resolve(targets)
        payload, bufs, digest = self.client._apply_frames(f, args, kwargs)
        if make_ar is None:
            make_ar = lambda ids: AsyncResult(self.client, ids, _name(f), single=single)  # noqa: E731
        extra = {"f": digest, **self._routing(tg)}
        return self.client._direct(
            "apply", tg, payload, bufs, make_ar, extra, track=self.track, view=self
        )

    def _routing(self, targets: list[int]) -> dict[str, Any]:
        """Extra header keys for the controller's direct path (none for a plain DirectView)."""
        return {}

    def _apply(self, f: Callable[..., Any], args: Any, kwargs: Any) -> AsyncResult:
        return self._send_apply(f, args, kwargs)

    def _map(self, f: Callable[..., Any], sequences: Any, **kw: Any) -> AsyncMapResult:
        if kw:
            raise TypeError(f"DirectView.map got unexpected arguments: {', '.join(kw)}")
        seqs = _check_sequences(sequences)
        tg, _ = self._resolve()
        pieces = [partition.partition(s, len(tg)) for s in seqs]
        calls: list[tuple[int, tuple[Any, ...], dict[str, Any]]] = [
            (target, tuple(p[i] for p in pieces), {})
            for i, target in enumerate(tg)
            if len(pieces[0][i])
        ]
        sizes = [len(args[0]) for _, args, _ in calls]
        client = self.client
        return client._direct_each(  # type: ignore[return-value]
            f,
            calls,
            lambda ids: AsyncMapResult(client, ids, sizes, _name(f)),
            {"mp": 1},
            track=self.track,
            view=self,
        )

    # ---- namespace ---------------------------------------------------------------------

    def execute(
        self, code: str, silent: bool = True, targets: Any = None, block: bool | None = None
    ) -> AsyncResult:
        """Run code in each engine's namespace; return its AsyncResult (when blocking, once
        done, raising the engines' errors).

        Each engine's result is an :class:`~par.client.outputs.ExecuteReply`. With
        ``silent=False`` the value of a final expression, if not None, becomes the
        message's ``execute_result`` (a MIME bundle), as a cell's ``Out`` in IPython;
        ``silent=True`` (the default, as in ipyparallel) runs the code without one.
        """
        tg, single = self._resolve(targets)
        client = self.client
        ar = client._direct(
            "execute",
            tg,
            [code.encode()],
            [],
            lambda ids: AsyncResult(client, ids, "execute", single=single),
            None if silent else {"x": 1},
            view=self,
        )
        for md in ar._metadata:
            md["execute_input"] = code
        if self.block if block is None else block:
            ar.get()
        return ar

    def run(
        self, filename: str | Path, targets: Any = None, block: bool | None = None
    ) -> AsyncResult:
        """Run a local Python file's code on the engines (see :meth:`execute`)."""
        return self.execute(Path(filename).read_text(), targets=targets, block=block)

    def push(self, ns: dict[str, Any], targets: Any = None, block: bool | None = None) -> Any:
        """Set names in each engine's namespace."""
        if not isinstance(ns, dict):
            raise TypeError(f"push needs a dict of names to values, not {type(ns).__name__}")
        return self._finish(self._send_apply(remote.push, (ns,), {}, targets), block)

    def update(self, ns: dict[str, Any]) -> Any:
        """Push ``ns`` (as dict.update does)."""
        return self.push(ns)

    def pull(self, names: str | list[str], targets: Any = None, block: bool | None = None) -> Any:
        """Values of one or more names from each engine."""
        return self._finish(self._send_apply(remote.pull, (names,), {}, targets), block)

    def get(self, key_s: str | list[str]) -> Any:
        """Pull, waiting for the values."""
        return self.pull(key_s, block=True)

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str):
            raise TypeError(f"view keys are variable names, not {type(key).__name__}")
        return self.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.push({key: value}, block=True)

    def clear(self, targets: Any = None, block: bool | None = None) -> Any:
        """Empty the engines' namespaces."""
        return self._finish(self._send_apply(remote.clear, (), {}, targets), block)

    def scatter(
        self,
        key: str,
        seq: Any,
        dist: str = "b",
        flatten: bool = False,
        targets: Any = None,
        block: bool | None = None,
    ) -> Any:
        """Split ``seq`` across the engines, storing each part under ``key``."""
        tg, _ = self._resolve(targets)
        parts = partition.partition(seq, len(tg), dist)
        calls: list[tuple[int, tuple[Any, ...], dict[str, Any]]] = [
            (t, ({key: part[0] if flatten and len(part) == 1 else part},), {})
            for t, part in zip(tg, parts, strict=True)
        ]
        client = self.client
        ar = client._direct_each(
            remote.push,
            calls,
            lambda ids: AsyncResult(client, ids, "scatter", single=False),
            track=self.track,
            view=self,
        )
        return self._finish(ar, block)

    def gather(
        self, key: str, dist: str = "b", targets: Any = None, block: bool | None = None
    ) -> Any:
        """Pull ``key`` from each engine and join the parts (the inverse of scatter)."""
        tg, _ = self._resolve(targets)
        ar = self._send_apply(
            remote.pull,
            (key,),
            {},
            tg,
            lambda ids: _Joined(self.client, ids, dist),
        )
        return self._finish(ar, block)

    # ---- imports, serializers, magics ---------------------------------------------------

    @property
    def importer(self) -> contextlib.AbstractContextManager[None]:
        """``sync_imports()`` as a property, as in ipyparallel: ``with dv.importer: import x``
        imports ``x`` here and on the engines."""
        return self.sync_imports()

    @contextlib.contextmanager
    def sync_imports(self, local: bool = True, quiet: bool = False) -> Iterator[None]:
        """Within the block, every ``import`` this thread runs also runs on the engines.

        ``import numpy as np`` imports ``numpy`` remotely (aliases are not carried over).
        """
        if not local:
            raise NotImplementedError(
                "sync_imports(local=False) is not supported: imports run here and on the engines"
            )
        import builtins
        import threading

        real_import = builtins.__import__
        owner = threading.get_ident()
        done: set[str] = set()

        def view_import(
            name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
        ) -> Any:
            if threading.get_ident() != owner:  # other threads import as usual
                return real_import(name, globals, locals, fromlist, level)
            builtins.__import__ = real_import  # what the imported modules import stays local
            try:
                module = real_import(name, globals, locals, fromlist, level)
                key = f"{name}:{','.join(fromlist or ())}"
                if level == 0 and key not in done:
                    done.add(key)
                    names = ", ".join(fromlist or ())
                    stmt = f"from {name} import {names}" if fromlist else f"import {name}"
                    if not quiet:
                        print(f"{stmt} on engine(s)")
                    self.execute(stmt, block=True)
                return module
            finally:
                builtins.__import__ = view_import

        builtins.__import__ = view_import
        try:
            yield
        finally:
            builtins.__import__ = real_import

    def use_cloudpickle(self) -> Any:
        """Kept for ipyparallel code: par always pickles with cloudpickle, so nothing changes.

        Returns the result of a no-op on the engines, as ipyparallel returns its apply's.
        """
        return self.apply(_unchanged_serializer)

    def use_dill(self) -> Any:
        """Kept for ipyparallel code: par's cloudpickle already sends what dill is used for
        (closures, lambdas, interactively defined classes); nothing changes."""
        return self.apply(_unchanged_serializer)

    def use_pickle(self) -> Any:
        """Kept for ipyparallel code: par keeps cloudpickle (plain pickle cannot send
        interactively defined functions); nothing changes."""
        return self.apply(_unchanged_serializer)

    def activate(self, suffix: str = "") -> None:
        """Register ``%px``, ``%%px``, ``%autopx``, ``%pxresult``, ``%pxconfig`` (plus ``suffix``)
        for this view in the running IPython session."""
        from ..magics import activate

        activate(self, suffix)


class BroadcastView(DirectView):
    """A DirectView whose requests reach every target in one client message.

    With ``is_coalescing=True`` the controller also gathers the engines' replies
    and returns them to the client as one message.
    """

    _flag_names: tuple[str, ...] = ("block", "track", "label", "targets", "is_coalescing")

    def __init__(
        self, client: Client, targets: Any = "all", is_coalescing: bool = False, **flags: Any
    ) -> None:
        self.is_coalescing = is_coalescing
        super().__init__(client, targets, **flags)

    def __repr__(self) -> str:
        return f"<BroadcastView {self.targets!r} coalescing={self.is_coalescing}>"

    def _routing(self, targets: list[int]) -> dict[str, Any]:
        return {"co": 1} if self.is_coalescing and len(targets) > 1 else {}


class _Joined(AsyncResult):
    """A gather: one part per engine, joined into one sequence."""

    def __init__(self, client: Client, msg_ids: list[str], dist: str) -> None:
        super().__init__(client, msg_ids, "gather", single=False)
        self._dist = dist

    def _reconstruct(self, values: list[Any]) -> Any:
        parts = [v if hasattr(v, "__len__") else [v] for v in values]
        return partition.join(parts, self._dist)


class LoadBalancedView(View):
    """Work sent to whichever engine is free: each task runs once, somewhere.

    Flags: ``targets`` (engines it may use), ``retries`` (run again elsewhere after a
    failure or an engine's death), ``after`` / ``follow`` (time and location
    dependencies: message ids, AsyncResults or a :class:`~par.Dependency`) and
    ``timeout`` (seconds dependencies may take to be met).
    """

    _flag_names: tuple[str, ...] = (
        "block",
        "track",
        "label",
        "targets",
        "retries",
        "timeout",
        "after",
        "follow",
    )

    def __init__(self, client: Client, block: bool = False, **flags: Any) -> None:
        self.targets: Any = None
        self.retries = 0
        self.timeout: float | None = None
        self.after: Any = None
        self.follow: Any = None
        super().__init__(client, block, **flags)

    def set_flags(self, **flags: Any) -> View:
        """Set flags, checking their values; return the view."""
        if "retries" in flags and (not isinstance(flags["retries"], int) or flags["retries"] < 0):
            raise ValueError(f"retries must be a non-negative integer, not {flags['retries']!r}")
        if "timeout" in flags and flags["timeout"] is not None and not flags["timeout"] > 0:
            raise ValueError(
                f"timeout must be a positive number of seconds, not {flags['timeout']!r}"
            )
        for key in ("after", "follow"):
            if key in flags:
                dependency_header(flags[key])  # raises on nonsense now, not at submission
        return super().set_flags(**flags)

    def __repr__(self) -> str:
        return (
            "<LoadBalancedView>" if self.targets is None else f"<LoadBalancedView {self.targets}>"
        )

    def __len__(self) -> int:
        return len(self._allowed() or self.client.ids)

    def _allowed(self) -> list[int] | None:
        return None if self.targets is None else self.client._build_targets(self.targets)

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
            extra["lb"] = str(self.label)
        return extra

    def _apply(self, f: Callable[..., Any], args: Any, kwargs: Any) -> AsyncResult:
        return self.client._tasks(
            f,
            [(tuple(args), kwargs)],
            lambda ids: AsyncResult(self.client, ids, _name(f)),
            self._header_flags(),
            track=self.track,
            view=self,
        )

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
        seqs = _check_sequences(sequences)
        n = len(seqs[0])
        starts = range(0, n, chunksize)
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
            (tuple(s[lo : lo + chunksize] for s in seqs), {}) for lo in starts
        ]
        sizes = [min(chunksize, n - lo) for lo in starts]
        client = self.client
        return client._tasks(  # type: ignore[return-value]
            f,
            calls,
            lambda ids: AsyncMapResult(client, ids, sizes, _name(f), ordered),
            {"mp": 1, **self._header_flags()},
            track=self.track,
            view=self,
        )

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
        from ..imap import LazyMapIterator

        return LazyMapIterator(self, f, sequences, ordered, max_outstanding, return_exceptions)

    def register_joblib_backend(self, name: str | None = None, make_default: bool = False) -> None:
        """Register this view as joblib's ``name`` backend (:func:`par.register_joblib_backend`).

        Without a name it is registered as both ``"par"`` and ``"ipyparallel"``.
        """
        from ..joblib import register_joblib_backend

        register_joblib_backend(name, make_default, view=self)
