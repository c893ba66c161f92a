"""Lazy parallel map over a load-balanced view: input read as needed, results as they come.

A helper thread draws items from the input (which may be an endless
generator) and submits one task per item, keeping at most
``max_outstanding`` tasks running and at most as many finished results
waiting to be read, so neither the controller nor this process holds more
than a window of the work. Once someone waits for the whole map
(:meth:`LazyMapIterator.wait`, as an executor's ``shutdown`` does), unread
results no longer hold the submission back.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client.asyncresult import AsyncResult
    from .client.view import View


class _Window:
    """State shared by the submitting thread and the reader."""

    def __init__(self, max_outstanding: int, ordered: bool) -> None:
        self.cond = threading.Condition()
        self.max_outstanding = max_outstanding
        self.ordered = ordered
        self.running = 0
        self.waiting: collections.deque[AsyncResult] = collections.deque()  # submitted, unread
        self.finished: collections.deque[AsyncResult] = collections.deque()  # unordered: done
        self.exhausted = False
        self.cancelled = False
        self.draining = False  # waited for as a whole: unread results no longer bound it
        self.error: BaseException | None = None

    def full(self) -> bool:
        if self.running >= self.max_outstanding:
            return True
        return not self.draining and len(self.waiting) >= 2 * self.max_outstanding

    def finished_all(self) -> bool:
        return self.cancelled or (self.exhausted and self.running == 0)

    def task_done(self, ar: Any) -> None:
        with self.cond:
            self.running -= 1
            if not self.ordered:
                self.finished.append(ar)
            self.cond.notify_all()


class LazyMapIterator(Iterator[Any]):
    """Results of ``f`` over lazily read input, in order or as they finish; ``cancel()`` stops."""

    def __init__(
        self,
        view: View,
        f: Callable[..., Any],
        sequences: tuple[Iterable[Any], ...],
        ordered: bool = True,
        max_outstanding: int | str = "auto",
        return_exceptions: bool = False,
    ) -> None:
        if not sequences:
            raise TypeError("imap needs at least one sequence")
        if not callable(f):
            raise TypeError(f"imap needs a callable, not {type(f).__name__}")
        if max_outstanding == "auto":
            max_outstanding = max(len(view), 1)
        if not isinstance(max_outstanding, int) or max_outstanding < 1:
            raise ValueError(
                f"max_outstanding must be a positive integer or 'auto', not {max_outstanding!r}"
            )
        self.return_exceptions = return_exceptions
        self._window = _Window(max_outstanding, ordered)
        self._thread = threading.Thread(
            target=_submit,
            args=(self._window, view, f, zip(*sequences, strict=False)),
            name="par-imap",
            daemon=True,
        )
        self._thread.start()

    def __iter__(self) -> LazyMapIterator:
        return self

    def __next__(self) -> Any:
        w = self._window
        with w.cond:
            while True:
                if w.cancelled:
                    raise StopIteration
                if w.ordered and w.waiting:
                    ar = w.waiting[0]
                    if ar.done():
                        w.waiting.popleft()
                        break
                elif not w.ordered and w.finished:
                    ar = w.finished.popleft()
                    w.waiting.remove(ar)
                    break
                elif w.error is not None:
                    error, w.error = w.error, None
                    raise error
                elif w.exhausted and not w.waiting:
                    raise StopIteration
                w.cond.wait()
            w.cond.notify_all()
        return ar.get(return_exceptions=self.return_exceptions)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every input item has been submitted and its task has finished (or the
        map was cancelled); True if so within ``timeout`` seconds. The results stay to be
        read, however many: waiting lifts the bound on unread ones."""
        w = self._window
        with w.cond:
            w.draining = True
            w.cond.notify_all()
            return w.cond.wait_for(w.finished_all, timeout)

    def cancel(self) -> None:
        """Stop reading input and submitting, abort tasks not yet started, end the iteration."""
        w = self._window
        with w.cond:
            w.cancelled = True
            pending = [ar for ar in w.waiting if not ar.done()]
            w.cond.notify_all()
        for ar in pending:
            ar.abort()

    def __del__(self) -> None:
        # An iterator dropped half-way must not leave its thread waiting forever.
        window = self.__dict__.get("_window")
        if window is not None and not window.exhausted:
            with window.cond:
                window.cancelled = True
                window.cond.notify_all()


def _submit(
    w: _Window, view: View, f: Callable[..., Any], items: Iterator[tuple[Any, ...]]
) -> None:
    """Submit one task per input item, never more than the window allows."""
    try:
        for args in items:
            with w.cond:
                w.cond.wait_for(lambda: w.cancelled or not w.full())
                if w.cancelled:
                    return
                w.running += 1
            ar = view.apply_async(f, *args)
            with w.cond:
                w.waiting.append(ar)
                w.cond.notify_all()
            ar.add_done_callback(w.task_done)
    except BaseException as exc:  # the input or a submission failed: the reader raises it
        with w.cond:
            w.error = exc
            w.cond.notify_all()
    finally:
        with w.cond:
            w.exhausted = True
            w.cond.notify_all()
