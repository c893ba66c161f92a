"""``concurrent.futures.Executor`` over a view: ``view.executor``.

As with ``concurrent.futures``' executors, ``shutdown(wait=True)`` (the end
of a ``with`` block) waits for all the work given to the executor: the tasks
of ``submit`` and every task of its maps, whose results then wait to be read.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures import wait as wait_futures
from typing import TYPE_CHECKING, Any

from .imap import LazyMapIterator

if TYPE_CHECKING:
    from .client.view import View


class ViewExecutor(Executor):
    """Runs ``submit`` and ``map`` on a view's engines; ``shutdown`` never stops engines."""

    def __init__(self, view: View) -> None:
        self.view = view
        self._shutdown = False
        self._lock = threading.Lock()
        self._futures: weakref.WeakSet[Future[Any]] = weakref.WeakSet()
        self._lazy_maps: weakref.WeakSet[LazyMapIterator] = weakref.WeakSet()

    @property
    def _max_workers(self) -> int:
        return len(self.view)

    def _check(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on the view; an AsyncResult (a Future) at once."""
        with self._lock:
            self._check()
            ar = self.view.apply_async(fn, *args, **kwargs)
            self._futures.add(ar)
        return ar

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """Results of ``fn`` over the iterables, in order; ``timeout`` counts from this call.

        On a load-balanced view input is read lazily and, without a ``timeout``, the
        iterator is the view's ``imap`` (a :class:`~par.LazyMapIterator`), as in ipyparallel.
        """
        start = time.monotonic()
        imap = getattr(self.view, "imap", None)
        results: Iterator[Any]
        with self._lock:
            self._check()
            if imap is not None and chunksize == 1:
                lazy: LazyMapIterator = imap(fn, *iterables)
                self._lazy_maps.add(lazy)
                results = lazy
            else:
                kw: dict[str, Any] = {"chunksize": chunksize} if chunksize != 1 else {}
                amr = self.view.map_async(fn, *iterables, **kw)
                self._futures.add(amr)
                results = iter(amr)
        if timeout is None:
            return results
        return _with_deadline(results, start + timeout, timeout)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; optionally abort unstarted tasks (and stop the maps), and wait
        for the rest: every task submitted, and every task of the maps."""
        with self._lock:
            self._shutdown = True
            futures = list(self._futures)
            lazy_maps = list(self._lazy_maps)
        if cancel_futures:
            for f in futures:
                if not f.done():
                    self.view.client.abort([f])
            for m in lazy_maps:
                m.cancel()
        if wait:
            wait_futures(futures)
            for m in lazy_maps:
                m.wait()


def _with_deadline(results: Iterator[Any], deadline: float, timeout: float) -> Iterator[Any]:
    """Yield from ``results``, raising TimeoutError for any result not ready by ``deadline``."""
    ready: queue.Queue[tuple[bool, Any]] = queue.Queue()

    def pull() -> None:
        try:
            for value in results:
                ready.put((True, value))
        except BaseException as exc:  # a task's error: raised in the reader's thread
            ready.put((False, exc))
        ready.put((False, None))

    threading.Thread(target=pull, name="par-executor-map", daemon=True).start()
    while True:
        try:
            ok, value = ready.get(timeout=max(deadline - time.monotonic(), 0))
        except queue.Empty:
            cancel = getattr(results, "cancel", None)
            if cancel is not None:
                cancel()
            raise TimeoutError(f"map results not ready within {timeout} s") from None
        if ok:
            yield value
        elif value is None:
            return
        else:
            raise value
