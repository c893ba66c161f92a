"""Functions bound to a view: ``@par.remote(view)`` and ``@par.parallel(view)``.

A :class:`RemoteFunction` runs on its view when called (``view.apply``). A
:class:`ParallelFunction` is called with whole sequences: it cuts them into
parts and sends them through the view's one path for work in parts
(:meth:`~par.client.view.View.send_parts`), the path ``map`` takes too, then
joins the parts' values back into one sequence. Neither knows a view's
class: what differs between views is theirs to do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import partition
from .asyncresult import JoinedResult

if TYPE_CHECKING:
    from .view import Parts, View


class RemoteFunction:
    """A function that runs on a view when called: ``view.apply(f, ...)``."""

    def __init__(
        self, view: View, f: Callable[..., Any], block: bool | None = None, **flags: Any
    ) -> None:
        if not callable(f):
            raise TypeError(f"remote decorates a callable, not {type(f).__name__}")
        view.check_flags(**flags)
        self.view = view
        self.func = f
        self.block = block
        self.flags = flags
        self.__name__ = getattr(f, "__name__", type(f).__name__)
        self.__doc__ = getattr(f, "__doc__", None)

    def _blocking(self) -> bool:
        return bool(self.view.block if self.block is None else self.block)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.view.temp_flags(**self.flags):
            ar = self.view.apply_async(self.func, *args, **kwargs)
        return ar.get() if self._blocking() else ar


class ParallelFunction(RemoteFunction):
    """A function called with whole sequences: each engine (or task) gets a part of them
    and the parts of the result are joined; ``.map`` calls it element by element.

    ``dist`` cuts the sequences into blocks (``'b'``) or round-robin (``'r'``): one part
    per engine of the view, or on a load-balanced view with ``chunksize``, parts of about
    that many elements.
    """

    def __init__(
        self,
        view: View,
        f: Callable[..., Any],
        dist: str = "b",
        block: bool | None = None,
        ordered: bool = True,
        chunksize: int | None = None,
        **flags: Any,
    ) -> None:
        check_parallel_args(dist, chunksize)
        super().__init__(view, f, block, **flags)
        self.dist = dist
        self.ordered = ordered
        self.chunksize = chunksize

    def __call__(self, *sequences: Any) -> Any:
        if not sequences:
            raise TypeError("a parallel function needs at least one sequence")
        seqs = partition.aligned(sequences)
        n, dist, view = len(seqs[0]), self.dist, self.view
        chunked = -(-n // self.chunksize) if self.chunksize and view.load_balanced else 0

        def split(width: int) -> Parts:
            return partition.split(seqs, max(chunked or width, 1), dist)

        client, fname = view.client, self.__name__
        with view.temp_flags(**self.flags):
            ar = view.send_parts(
                self.func, split, lambda ids, _: JoinedResult(client, ids, fname, dist)
            )
        return ar.get() if self._blocking() else ar

    def map(self, *sequences: Any) -> Any:
        """``map(f, *sequences)`` on the view, one call per element."""
        kw: dict[str, Any] = {}
        if self.view.load_balanced:
            kw = {"ordered": self.ordered, "chunksize": self.chunksize or 1}
        with self.view.temp_flags(**self.flags):
            ar = self.view.map_async(self.func, *sequences, **kw)
        return ar.get() if self._blocking() else ar


def check_parallel_args(dist: str, chunksize: int | None) -> None:
    """Refuse a bad ``dist`` or ``chunksize`` when the decorator is made, not when called."""
    if dist not in ("b", "r"):
        raise ValueError(f"unknown dist {dist!r}: use 'b' (blocks) or 'r' (round-robin)")
    if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
        raise ValueError(f"chunksize must be a positive integer, not {chunksize!r}")


def remote(
    view: View, block: bool | None = None, **flags: Any
) -> Callable[[Callable[..., Any]], RemoteFunction]:
    """Decorator: calling the function runs it on ``view`` (``view.apply``)."""

    def decorate(f: Callable[..., Any]) -> RemoteFunction:
        return RemoteFunction(view, f, block, **flags)

    return decorate


def parallel(
    view: View,
    dist: str = "b",
    block: bool | None = None,
    ordered: bool = True,
    chunksize: int | None = None,
    **flags: Any,
) -> Callable[[Callable[..., Any]], ParallelFunction]:
    """Decorator: calling the function with sequences runs it on parts of them across ``view``."""
    check_parallel_args(dist, chunksize)

    def decorate(f: Callable[..., Any]) -> ParallelFunction:
        return ParallelFunction(view, f, dist, block, ordered, chunksize, **flags)

    return decorate
