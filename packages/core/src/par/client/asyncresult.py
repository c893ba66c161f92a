"""Results of requests: futures that fill in as engines reply.

An :class:`AsyncResult` is a ``concurrent.futures.Future`` over one or more
messages. It has two sides. What the client's receiving thread (see
:mod:`par.client.io`) deals with is :class:`MessageFuture`: it takes each
message's reply (:meth:`MessageFuture.deliver`), completes the Future once
every message has one, and unpickles the payload only when a value is asked
for, so receiving never spends time on results nobody reads. What users call
(values, waiting, metadata, outputs) is :class:`AsyncResult`, built on it;
a thread waiting on one takes its replies in itself
(:meth:`par.client.io.IOThread.lead`). Its subclasses differ in how their
messages' values make one: :class:`AsyncMapResult` (a map's chunks,
flattened, iterable as they arrive) and :class:`JoinedResult` (a gather's
parts, joined).

Results are many (one per task in a loop of ``apply_async``), so each is
kept light: a lighter condition than ``Future``'s own, the client's shared
``arrivals`` condition for partial deliveries, and its messages' metadata
made only when something reads it (most results' never is), from the
replies kept (see :meth:`MessageFuture.metadata_list`). A reply that
carries output (streams, displays, published data) has it made at once, as
only the metadata keeps that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import operator
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, Future
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED, PENDING
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import CompositeError, RemoteError
from . import outputs, partition, timing
from .outputs import ExecuteReply
from .replies import Metadata, Reply, record_answer

if TYPE_CHECKING:
    from .client import Client


class _Waiters(list[Any]):
    """A result's waiters, as ``concurrent.futures.wait`` and ``as_completed`` add them:
    the result keeps the list once one is added (see :class:`_WaitersWhenAdded`)."""

    __slots__ = ("result",)

    def __init__(self, result: MessageFuture) -> None:
        super().__init__()
        self.result: MessageFuture | None = result

    def append(self, waiter: Any) -> None:
        """Add a waiter; the first makes the result keep this list."""
        if self.result is not None:
            vars(self.result)["_waiters"] = self
            self.result = None  # no cycle: the result alone holds the list
        super().append(waiter)


class _WaitersWhenAdded:
    """``Future._waiters``, made for a result only when a waiter is added. ``Future``
    reads it when it completes and finds a new empty list; a waiter added to one makes it
    the result's own, which its instance dictionary then gives (this descriptor has no
    ``__set__``). A list for every result was one object more for the collector to walk
    among the thousands of results a loop holds."""

    def __get__(self, result: MessageFuture | None, owner: type | None = None) -> Any:
        return self if result is None else _Waiters(result)


class _ValueWhenRead:
    """``Future._result``: the result's value, made when the standard library's code reads
    it (``Future.result``, called unbound, as a thread pool or a library may). par
    completes a result without ``set_result`` (see :meth:`MessageFuture._settle`), and
    unpickles a value only when it is asked for; a ``set_result`` by hand still gives
    its value, in the instance dictionary (this descriptor has no ``__set__``)."""

    def __get__(self, result: MessageFuture | None, owner: type | None = None) -> Any:
        if result is None:
            return self
        return result._value() if result._state == FINISHED else None


_ENDED = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)


class _ResultCondition:
    """``Future._condition`` as the standard library's code meets it on a result: the
    client's shared ``arrivals``, with ``wait`` lasting until this result is done or its
    time is up. ``Future.result`` and ``exception`` (called unbound, as a thread pool or a
    library may) wait once and then take the result as done or timed out; a reply to
    another result, or the receiving lead changing hands, notifies the shared condition
    and would end that wait early."""

    __slots__ = ("arrivals", "result")

    def __init__(self, result: MessageFuture) -> None:
        self.result = result
        self.arrivals = result._arrivals

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the result is done, or ``timeout`` (the lock held, as Condition's)."""
        return self.arrivals.wait_for(self.result.done, timeout)

    def notify_all(self) -> None:
        """Wake every thread waiting on the client's results."""
        self.arrivals.notify_all()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the shared condition's lock."""
        return self.arrivals.acquire(blocking, timeout)

    def release(self) -> None:
        """Let the shared condition's lock go."""
        self.arrivals.release()

    def __enter__(self) -> bool:
        return self.arrivals.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.arrivals.__exit__(*exc)


class _SharedCondition:
    """``Future._condition``: a :class:`_ResultCondition` made at each read, so that no
    result keeps one (par's own code uses ``_arrivals``, the shared condition itself)."""

    def __get__(self, result: MessageFuture | None, owner: type | None = None) -> Any:
        return self if result is None else _ResultCondition(result)


class MessageFuture(Future[Any]):
    """A Future over one or more messages, completed once each has its reply.

    ``single``: its value is its one message's, not a list; ``targets`` is taken as
    ipyparallel's AsyncResult takes it, and unused. ``owner`` (set by the ledger for
    the result a request returns, see :mod:`par.client.ledger`): once complete, it
    drops its messages from the client's ``metadata`` and ``results``.
    """

    owner = False
    view: Any = None  # the view that sent it, if one did
    _errors: dict[str, RemoteError] | None = None  # made when a message fails (error_of)
    # Four objects fewer for the collector to walk in each result that does not need them
    # (a loop of ``apply_async`` keeps thousands): callbacks' list, made by the first
    # add_done_callback; the order replies came in, which only an unordered map reads; the
    # trackers of sends made with track=True (see AsyncResult.sent); and the waiters of
    # concurrent.futures' wait and as_completed (see _WaitersWhenAdded).
    _done_callbacks: Any = ()
    _order: list[str] | None = None
    _trackers: Any = ()
    _waiters: Any = _WaitersWhenAdded()
    _condition: Any = _SharedCondition()
    _result: Any = _ValueWhenRead()

    def __init__(
        self,
        client: Client,
        msg_ids: list[str],
        fname: str = "",
        single: bool = True,
        targets: Any = None,
    ) -> None:
        # Future.__init__'s fields, but for the condition: the client's ``arrivals``, shared
        # by its results (see ledger.py) and notified at every reply a result takes in. A
        # condition and its lock for each result were two objects more for the collector to
        # walk among the thousands of results a loop holds. A wake-up meant for another
        # result is harmless: every wait lasts until this one is done (AsyncResult's own,
        # and Future's through _SharedCondition).
        self._arrivals = client.ledger.arrivals
        self._state = PENDING
        self._exception: BaseException | None = None
        self._client = client
        self.msg_ids = list(msg_ids)
        self._fname = fname
        self._single = single and len(msg_ids) == 1
        self._replies: dict[str, Reply] = {}
        self._has_value = False
        self._cached: Any = None
        self._submitted = time.time()
        self._records: list[Metadata] | None = None  # its messages' metadata, made when read
        self._metadata_by_id: dict[str, Metadata] | None = None  # made when first needed
        self._sent_to: list[int] | None = None  # each message's engine, for direct requests
        self._watchers: dict[str, list[MessageFuture]] = {}
        if not self.msg_ids:  # a map over nothing: no reply will ever come to finish it
            self._settle(None)

    # ---- filled in by the thread receiving -----------------------------------------------

    def metadata_list(self) -> list[Metadata]:
        """Its messages' metadata, made now if never read: most results' never is (a loop
        of ``apply_async`` reads values), and making it for every task was a fifth of the
        client's time. Made, it holds what the replies so far said; later ones write into
        it as they come (:meth:`deliver`)."""
        records = self._records
        if records is not None:
            return records
        made = self._client.ledger.records_for(self, self._submitted)
        if self._sent_to is not None:
            for md, engine in zip(made, self._sent_to, strict=True):
                md["engine_id"] = engine
        with self._arrivals:  # not between a reply's arrival and its record
            if self._records is None:
                by_id = dict(zip(self.msg_ids, made, strict=True))
                for mid, reply in self._replies.items():
                    record_answer(by_id[mid], reply)
                self._records = made
            return self._records

    def metadata_of(self, msg_id: str) -> Metadata:
        """The metadata of one of this result's messages."""
        records = self.metadata_list()
        if len(records) == 1:
            return records[0]
        if self._metadata_by_id is None:
            self._metadata_by_id = dict(zip(self.msg_ids, records, strict=True))
        return self._metadata_by_id[msg_id]

    def made_metadata_of(self, msg_id: str) -> Metadata | None:
        """The metadata of one of this result's messages if it was made, else None."""
        return None if self._records is None else self.metadata_of(msg_id)

    def sent_to(self, engines: list[int]) -> None:
        """Note the engine each message went to (a direct request's, in order)."""
        self._sent_to = engines
        if self._records is not None:
            for md, engine in zip(self._records, engines, strict=True):
                if md["engine_id"] is None:  # else its reply came first and set it
                    md["engine_id"] = engine

    def deliver(self, msg_id: str, reply: Reply) -> None:
        """Take in the reply to one of this result's messages (the client's receiving
        thread calls this, as an executor calls ``set_result``)."""
        self.deliver_all([(msg_id, reply)])

    def deliver_all(self, replies: list[tuple[str, Reply]]) -> None:
        """Take in replies to this result's messages, as :meth:`deliver` does each, at one
        wake-up of the threads waiting: a reply batch of a map's tasks is mostly one
        result's."""
        watched: list[tuple[MessageFuture, str, Reply]] = []
        with self._arrivals:
            taken = self._replies
            if self._records is not None:
                for msg_id, reply in replies:
                    record_answer(self.metadata_of(msg_id), reply)
            for msg_id, reply in replies:
                taken[msg_id] = reply
            if self._order is not None:
                self._order.extend(msg_id for msg_id, _ in replies)
            if self._watchers:
                for msg_id, reply in replies:
                    for watcher in self._watchers.pop(msg_id, ()):
                        watched.append((watcher, msg_id, reply))
            done = len(taken) == len(self.msg_ids)
            self._arrivals.notify_all()
        for watcher, msg_id, reply in watched:
            watcher.deliver(msg_id, reply)
        if done:
            self._finish()

    def done(self) -> bool:
        """Whether the result is complete (or cancelled). Read without the shared lock,
        which a waiting thread's every check would otherwise take: the state is one
        attribute, and what it says may change the moment the lock is let go anyway."""
        return self._state in _ENDED

    def add_done_callback(self, fn: Callable[[Future[Any]], object]) -> None:
        """Call ``fn`` with this result once it completes (now if it has)."""
        with self._arrivals:
            if not self._done_callbacks:
                self._done_callbacks = []
        super().add_done_callback(fn)

    def error_of(self, msg_id: str) -> RemoteError:
        """The error of one of this result's failed messages: made once, so that each
        read (``get``, iteration, the Future's exception) gives the same object."""
        if self._errors is None:
            self._errors = {}
        error = self._errors.get(msg_id)
        if error is None:
            error = self._errors.setdefault(msg_id, self._replies[msg_id].error())
        return error

    def forward(self, msg_id: str, other: MessageFuture) -> None:
        """Hand ``other`` this result's reply to ``msg_id`` (now if it is already here)."""
        with self._arrivals:
            reply = self._replies.get(msg_id)
            if reply is None:
                self._watchers.setdefault(msg_id, []).append(other)
        if reply is not None:
            other.deliver(msg_id, reply)

    def _finish(self) -> None:
        errors = [self.error_of(m) for m in self.msg_ids if not self._replies[m].ok]
        if not errors:
            self._settle(None)
        elif self._single:
            self._settle(errors[0])
        else:
            what = self._fname or "apply"
            self._settle(CompositeError(f"one or more exceptions raised in call to {what}", errors))

    def _settle(self, exception: BaseException | None) -> None:
        """Complete, as Future's ``set_result(None)`` or ``set_exception`` would, on the
        shared condition itself: theirs meet it through :class:`_SharedCondition`, which
        makes a view at each use. A result cancelled before its replies came stays
        cancelled, as ipyparallel's does (its replies are kept all the same)."""
        with self._arrivals:
            if self._state in _ENDED:
                return
            self._exception = exception
            self._state = FINISHED
            for waiter in self._waiters:
                if exception is None:
                    waiter.add_result(self)
                else:
                    waiter.add_exception(self)
            self._arrivals.notify_all()
        self._invoke_callbacks()  # type: ignore[attr-defined]  # Future's own, untyped

    # ---- values ---------------------------------------------------------------------------

    def _values(self, return_exceptions: bool) -> list[Any]:
        out: list[Any] = []
        for m in self.msg_ids:
            reply = self._replies[m]
            if reply.ok and reply.header.get("m") == "execute":
                out.append(ExecuteReply(m, reply.header.get("ec"), self.metadata_of(m)))
            elif reply.ok:
                out.append(reply.value())
            elif return_exceptions:
                out.append(self.error_of(m))
            else:
                raise self.error_of(m)
        return out

    def _reconstruct(self, values: list[Any]) -> Any:
        return values[0] if self._single else values

    def value_of(self, msg_id: str) -> Any:
        """The value of one of this result's messages, or the error it raised (KeyError
        until its reply came)."""
        reply = self._replies[msg_id]
        return reply.value() if reply.ok else self.error_of(msg_id)

    def _value(self) -> Any:
        """The value, unpickled once: two threads reading it at once may both unpickle it
        (outside the shared condition's lock, which replies wait on), and both get the
        first one's."""
        if not self._has_value:
            value = self._reconstruct(self._values(False))
            with self._arrivals:
                if not self._has_value:
                    self._cached, self._has_value = value, True
        return self._cached

    @staticmethod
    def _timeout(timeout: float | None) -> float | None:
        return None if timeout is None or timeout < 0 else timeout

    def _wait_until(self, ready: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``ready()`` or ``timeout``, receiving on this thread if it can (see
        IOThread.lead)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not ready():
            self._client.receiver.lead(ready, timeout)
        left = None if deadline is None else max(deadline - time.monotonic(), 0)
        with self._arrivals:  # what is left (the client is closing: nothing to receive)
            self._arrivals.wait_for(ready, left)

    def _reached(self, return_when: str) -> bool:
        with self._arrivals:
            if return_when == FIRST_COMPLETED:
                return bool(self._replies)
            if return_when == FIRST_EXCEPTION:
                return any(not r.ok for r in self._replies.values())
        return False

    @property
    def progress(self) -> int:
        """How much has arrived, in the units of ``len()``: messages with replies."""
        return len(self._replies)


class AsyncResult(MessageFuture):
    """The pending result of one or more messages; a ``concurrent.futures.Future``.

    ``return_exceptions`` (a map's, ``map(..., return_exceptions=True)``): errors take
    the place of their values in ``get()`` and iteration instead of being raised.
    """

    return_exceptions = False

    def get(
        self,
        timeout: float | None = None,
        return_exceptions: bool | None = None,
        return_when: str | None = None,
    ) -> Any:
        """Wait for and return the result; raise the remote error, or TimeoutError.

        With ``return_exceptions=True`` (default: the result's own ``return_exceptions``)
        errors are returned in place of results. With ``return_when=FIRST_EXCEPTION``
        the first error is raised as soon as it arrives, without waiting for the others.
        """
        if return_exceptions is None:
            return_exceptions = self.return_exceptions
        if return_when not in (None, ALL_COMPLETED, FIRST_EXCEPTION):
            raise ValueError(
                f"get(return_when=) takes ALL_COMPLETED or FIRST_EXCEPTION, not {return_when!r}"
            )
        if return_when == FIRST_EXCEPTION and not return_exceptions:
            done, pending = self.wait(timeout, FIRST_EXCEPTION)
            errors = [e for e in (ar.exception(0) for ar in done) if e is not None]
            if errors and pending:
                raise self._error_of(errors)
        if not self.wait(timeout):
            raise TimeoutError(f"result not ready within {timeout} s")
        if return_exceptions:
            return self._reconstruct(self._values(True))
        exc = self.exception(0)
        if exc is not None:
            raise exc
        return self._value()

    def _error_of(self, errors: list[RemoteError]) -> RemoteError:
        if self._single or (len(errors) == 1 and len(self.msg_ids) == 1):
            return errors[0]
        flat = [
            e for err in errors for e in (err.elist if isinstance(err, CompositeError) else [err])
        ]
        what = self._fname or "apply"
        return CompositeError(f"one or more exceptions raised in call to {what}", flat)

    def result(self, timeout: float | None = None) -> Any:
        """The result, as ``concurrent.futures.Future.result`` gives it."""
        return self.get(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The error it completed with, or None, as ``concurrent.futures.Future.exception``
        gives it (TimeoutError if not done within ``timeout`` seconds)."""
        if not self.wait(-1 if timeout is None else timeout):
            raise TimeoutError(f"not done within {timeout} s: {self!r}")
        return super().exception(0)

    @property
    def r(self) -> Any:
        """The result, waiting for it (short for ``get()``)."""
        return self.get()

    def wait(self, timeout: float | None = None, return_when: str | None = None) -> Any:
        """Wait up to ``timeout`` seconds (None or negative: forever); True if ready.

        With ``return_when`` (``FIRST_COMPLETED``, ``FIRST_EXCEPTION`` or
        ``ALL_COMPLETED``, as for ``concurrent.futures.wait``) return ``(done,
        pending)``: two sets of one-message results from :meth:`split`.
        """
        if return_when is not None:
            if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
                raise ValueError(
                    "return_when must be FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED, "
                    f"not {return_when!r}"
                )
            done, pending = concurrent.futures.wait(
                self.split(), self._timeout(timeout), return_when
            )
            return done, pending
        timeout = self._timeout(timeout)
        if timeout != 0:
            self._wait_until(self.done, timeout)
        return self.done()

    def ready(self) -> bool:
        """True once every message has a reply."""
        return self.done()

    def successful(self) -> bool:
        """True if ready and without errors (raises if not ready, as ipyparallel does)."""
        if not self.done():
            raise ValueError("result is not ready yet")
        return self.exception(0) is None

    def get_dict(self, timeout: float | None = None) -> dict[int, Any]:
        """Results keyed by engine id."""
        values = self.get(timeout)
        values = [values] if self._single else values
        ids = [md["engine_id"] for md in self.metadata_list()]
        if len(set(ids)) != len(ids):
            raise ValueError("get_dict needs at most one result per engine")
        return dict(zip(ids, values, strict=True))

    def abort(self) -> None:
        """Abort the messages of this result that have not started yet."""
        self._client.abort(self.msg_ids)

    @property
    def result_dict(self) -> dict[int, Any]:
        """Results keyed by engine id (waits; see :meth:`get_dict`)."""
        return self.get_dict()

    # ---- splitting and joining ------------------------------------------------------------

    # Whether a message's part of this result is a value of its own (an apply's, on one
    # engine) or a list of values (a map's chunk): a part from split() gets the one or the
    # other, as in ipyparallel.
    _parts_single: ClassVar[bool] = True

    def split(self) -> tuple[AsyncResult, ...]:
        """One AsyncResult per message, each filling in as its reply arrives (``(self,)``
        for a result of one message). A map's part is a plain AsyncResult whose value is
        the list of its chunk's values."""
        if len(self.msg_ids) == 1:
            return (self,)
        parts = []
        for m in self.msg_ids:
            part = AsyncResult(self._client, [m], self._fname, single=self._parts_single)
            self.forward(m, part)
            parts.append(part)
        return tuple(parts)

    @classmethod
    def join(cls, *results: AsyncResult) -> AsyncResult:
        """One AsyncResult over the messages of several (of the same client)."""
        if not results:
            raise ValueError("join needs at least one AsyncResult")
        client = results[0]._client
        if any(r._client is not client for r in results):
            raise ValueError("cannot join results of different clients")
        ids = [m for r in results for m in r.msg_ids]
        if len(set(ids)) != len(ids):
            raise ValueError("cannot join results that share messages")
        joined: AsyncResult
        if all(type(r) is AsyncMapResult for r in results):
            sizes = [n for r in results for n in r._sizes]
            joined = AsyncMapResult(client, ids, sizes, results[0]._fname)
        else:
            joined = AsyncResult(client, ids, results[0]._fname, single=False)
        for r in results:
            for m in r.msg_ids:
                r.forward(m, joined)
        return joined

    # ---- sending and output ---------------------------------------------------------------

    def add_tracker(self, tracker: Any) -> None:
        """Track a send (a ``zmq.MessageTracker``) made with ``track=True``."""
        if not self._trackers:
            self._trackers = []
        self._trackers.append(tracker)

    @property
    def sent(self) -> bool:
        """True once ZeroMQ no longer needs the buffers sent (always, unless ``track=True``)."""
        return all(t.done for t in self._trackers)

    def wait_for_send(self, timeout: float | None = -1) -> bool:
        """Wait until the sent buffers may be modified again; True if they may."""
        limit = self._timeout(timeout)
        deadline = None if limit is None else time.monotonic() + limit
        for t in self._trackers:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                t.wait(left)
            except Exception:  # zmq.NotDone when the tracker is still pending at the deadline
                return False
        return True

    def wait_for_output(self, timeout: float | None = -1) -> bool:
        """Wait until all output of the messages has arrived; True if it has.

        par holds a reply until the output its task streamed has arrived, so
        the output is complete as soon as the result is ready.
        """
        return bool(self.wait(timeout))

    @contextlib.contextmanager
    def stream_output(self, interval: float = 0.05) -> Iterator[AsyncResult]:
        """Show the engines' stdout, stderr and rich outputs here, live, while the block runs.

        Streams are prefixed with their engine; rich outputs (``display`` on an engine)
        show through IPython's display in IPython, as their text otherwise.
        """
        with outputs.streaming(self.metadata_list(), interval):
            yield self

    def display_outputs(self, groupby: str = "type", result_only: bool = False) -> None:
        """Show each message's stdout, stderr, rich outputs and execute result (streams
        headed by their engine, ``[stdout:0]``, unless the result is one engine's).

        ``groupby``: ``'type'`` (all stdout, then all stderr, then each engine's outputs,
        then the results), ``'engine'`` (everything of one engine together) or
        ``'order'`` (as ``'type'``, but the first outputs of every engine, then the
        second ones...). Rich outputs show through IPython's display in IPython, as their
        text otherwise. ``result_only``: only the execute results (after streaming).
        """
        if groupby not in ("type", "engine", "order"):
            raise ValueError(f"groupby must be 'type', 'engine' or 'order', not {groupby!r}")
        self.wait()
        outputs.display_all(self.metadata_list(), groupby, result_only, headed=not self._single)

    def wait_interactive(
        self,
        interval: float = 0.1,
        timeout: float | None = -1,
        widget: bool | None = None,
        return_when: str = ALL_COMPLETED,
    ) -> None:
        """Wait, showing a progress bar (text in a terminal; tqdm or ipywidgets if installed).

        ``widget=False`` forces the plain text bar; ``PAR_NONINTERACTIVE=1`` shows none.
        Raises TimeoutError if ``timeout`` passes first.
        """
        from ..progress import progress_bar

        if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
            raise ValueError(f"invalid return_when {return_when!r}")
        limit = self._timeout(timeout)
        deadline = None if limit is None else time.monotonic() + limit
        total = len(self)

        def finished() -> bool:
            return self.done() or self._reached(return_when)

        with progress_bar(total, self._fname or "tasks", widget) as bar:
            while True:
                done = self.progress
                bar.update(done)
                if finished():
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"{done} of {total} tasks finished within {timeout} s")
                self._wait_until(finished, interval)

    # ---- metadata -----------------------------------------------------------------------------

    @property
    def metadata(self) -> Any:
        """Metadata dict (single message) or list of them."""
        records = self.metadata_list()
        return records[0] if self._single else records

    @property
    def elapsed(self) -> float:
        """Seconds since the first submission (until now, or until ready)."""
        return timing.elapsed(self.metadata_list(), self.done())

    def _check_ready(self, what: str) -> None:
        if not self.done():
            raise TimeoutError(f"{what} is known once the result is ready: wait for it first")

    @property
    def wall_time(self) -> float:
        """Seconds from the first submission to the last reply received (TimeoutError
        until the result is ready)."""
        self._check_ready("wall_time")
        return timing.wall_time(self.metadata_list())

    @property
    def serial_time(self) -> float:
        """Sum of the engines' compute times (TimeoutError until the result is ready)."""
        self._check_ready("serial_time")
        return timing.serial_time(self.metadata_list())

    def timedelta(
        self,
        start: datetime | list[datetime],
        end: datetime | list[datetime],
        start_key: Callable[[Any], datetime] = min,
        end_key: Callable[[Any], datetime] = max,
    ) -> float:
        """Seconds from ``start`` to ``end``; lists are reduced with ``start_key``/``end_key``.

        ``ar.timedelta(ar.submitted, ar.received)`` is the wall time.
        """
        return timing.seconds_between(start, end, start_key, end_key)

    def _metadata_values(self, key: str) -> Any:
        """A metadata key's value (a list of them, one per message, unless single)."""
        md = self.metadata_list() if "_records" in self.__dict__ else None
        if not md or key not in md[0]:
            raise KeyError(key)
        values = [m[key] for m in md]
        return values[0] if self._single else values

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._metadata_values(key)
        except KeyError:
            raise AttributeError(f"{type(self).__name__!r} has no attribute {key!r}") from None

    def __getitem__(self, key: Any) -> Any:
        """A metadata key's value(s) for a string (KeyError if there is no such key);
        else the result's values, indexed."""
        if isinstance(key, str):
            return self._metadata_values(key)
        value = self.get()
        return (value if not self._single else [value])[key]

    def __dir__(self) -> list[str]:
        md = self.metadata_list() if "_records" in self.__dict__ else None
        return sorted({*super().__dir__(), *(md[0] if md else ())})

    def __len__(self) -> int:
        return len(self.msg_ids)

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        state = "finished" if self.done() else "pending"
        return f"<{type(self).__name__}({self._fname}): {state}>"


class AsyncMapResult(AsyncResult):
    """The result of a map: a flat list, iterable as chunks arrive."""

    _parts_single = False

    def __init__(
        self,
        client: Client,
        msg_ids: list[str],
        sizes: list[int],
        fname: str = "",
        ordered: bool = True,
    ) -> None:
        super().__init__(client, msg_ids, fname, single=False)
        self._sizes = sizes
        self.ordered = ordered

    def _reconstruct(self, values: list[Any]) -> Any:
        out: list[Any] = []
        for v in values:
            if isinstance(v, BaseException):
                out.append(v)
            else:
                out.extend(v)
        return out

    def __len__(self) -> int:
        return sum(self._sizes)

    @property
    def progress(self) -> int:
        """How many of the map's items have arrived (in the units of ``len()``)."""
        with self._arrivals:
            arrived = set(self._replies)
        return sum(n for m, n in zip(self.msg_ids, self._sizes, strict=True) if m in arrived)

    def __iter__(self) -> Iterator[Any]:
        if self.ordered:
            for m in self.msg_ids:
                self._wait_until(partial(operator.contains, self._replies, m))
                yield from self._chunk(m)
        else:
            with self._arrivals:
                if self._order is None:  # replies so far, in the order they came
                    self._order = list(self._replies)
            seen = 0
            while seen < len(self.msg_ids):
                self._wait_until(partial(self._arrived_beyond, seen))
                with self._arrivals:
                    m = self._order[seen]
                seen += 1
                yield from self._chunk(m)

    def _arrived_beyond(self, n: int) -> bool:
        return len(self._order or ()) > n

    def _chunk(self, msg_id: str) -> list[Any]:
        reply = self._replies[msg_id]
        if not reply.ok and self.return_exceptions:
            return [self.error_of(msg_id)]  # in place of the chunk's values, as in get()
        if not reply.ok:
            raise self.error_of(msg_id)
        return list(self._items_of(reply.value()))

    @staticmethod
    def _items_of(value: Any) -> Any:
        """The items of a message's value (a map's chunk: its list of values)."""
        return value


class JoinedResult(AsyncMapResult):
    """Parts of a sequence, one per message, joined back into one (a gather's, or a
    parallel function's): by ``dist``, as :func:`~par.client.partition.partition` cut them.

    An AsyncMapResult, as in ipyparallel; its length is its number of parts, as how many
    items a part holds is known only once it arrives.
    """

    def __init__(self, client: Client, msg_ids: list[str], fname: str, dist: str) -> None:
        super().__init__(client, msg_ids, [1] * len(msg_ids), fname)
        self._dist = dist

    def _reconstruct(self, values: list[Any]) -> Any:
        return partition.join([self._items_of(v) for v in values], self._dist)

    def __iter__(self) -> Iterator[Any]:
        if self._dist == "b":  # the parts in order are the items in order: as they arrive
            return super().__iter__()
        return iter(self.get())

    @staticmethod
    def _items_of(value: Any) -> Any:
        """A part's items (a scatter's flattened item is a part of one)."""
        return value if hasattr(value, "__len__") else [value]
