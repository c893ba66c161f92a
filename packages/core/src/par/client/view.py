"""Views: the ways of sending work to engines.

A :class:`DirectView` names its engines and sends one message that the
controller fans out to each; a :class:`LoadBalancedView` lets the
controller's task scheduler choose an engine per task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import namespace as remote
from . import partition
from .asyncresult import AsyncMapResult, AsyncResult

if TYPE_CHECKING:
    from .client import Client


def _name(f: Callable[..., Any]) -> str:
    return getattr(f, "__name__", type(f).__name__)


class View:
    """What all views share: flags, blocking and non-blocking calls, waiting."""

    _flag_names: tuple[str, ...] = ("block",)

    def __init__(self, client: Client, block: bool = False, **flags: Any) -> None:
        self.client = client
        self.block = block
        self.set_flags(**flags)

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
        """Wait for results (all the client's outstanding ones by default)."""
        return self.client.wait(jobs, timeout)

    def abort(self, jobs: Any = None, targets: Any = None, block: bool | None = None) -> None:
        """Abort tasks that have not started."""
        self.client.abort(jobs, targets, block)

    def queue_status(self, targets: Any = None, verbose: bool = False) -> dict[Any, Any]:
        """Queue counts of this view's engines."""
        return self.client.queue_status(targets if targets is not None else "all", verbose)


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

    _flag_names = ("block", "targets")

    def __init__(
        self, client: Client, targets: Any = "all", block: bool = False, **flags: Any
    ) -> None:
        self.targets = targets
        super().__init__(client, block, **flags)

    def _resolve(self, targets: Any = None) -> tuple[list[int], bool]:
        targets = self.targets if targets is None else targets
        return self.client._build_targets(targets), isinstance(targets, int)

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
        return self.client._direct("apply", tg, payload, bufs, make_ar, {"f": digest})

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
            f, calls, lambda ids: AsyncMapResult(client, ids, sizes, _name(f)), {"mp": 1}
        )

    # ---- namespace ---------------------------------------------------------------------

    def execute(
        self, code: str, silent: bool = True, targets: Any = None, block: bool | None = None
    ) -> Any:
        """Run code in each engine's namespace."""
        tg, single = self._resolve(targets)
        client = self.client
        ar = client._direct(
            "execute",
            tg,
            [code.encode()],
            [],
            lambda ids: AsyncResult(client, ids, "execute", single=single),
        )
        return self._finish(ar, block)

    def run(self, filename: str | Path, targets: Any = None, block: bool | None = None) -> Any:
        """Run a local Python file's code on the engines."""
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
            remote.push, calls, lambda ids: AsyncResult(client, ids, "scatter", single=False)
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


class _Joined(AsyncResult):
    """A gather: one part per engine, joined into one sequence."""

    def __init__(self, client: Client, msg_ids: list[str], dist: str) -> None:
        super().__init__(client, msg_ids, "gather", single=False)
        self._dist = dist

    def _reconstruct(self, values: list[Any]) -> Any:
        parts = [v if hasattr(v, "__len__") else [v] for v in values]
        return partition.join(parts, self._dist)


class LoadBalancedView(View):
    """Work sent to whichever engine is free: each task runs once, somewhere."""

    def __repr__(self) -> str:
        return "<LoadBalancedView>"

    def __len__(self) -> int:
        return len(self.client.ids)

    def _apply(self, f: Callable[..., Any], args: Any, kwargs: Any) -> AsyncResult:
        return self.client._tasks(
            f, [(tuple(args), kwargs)], lambda ids: AsyncResult(self.client, ids, _name(f))
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
            f, calls, lambda ids: AsyncMapResult(client, ids, sizes, _name(f), ordered), {"mp": 1}
        )
