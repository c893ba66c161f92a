"""Results of requests: futures that fill in as engines reply.

An :class:`AsyncResult` is a ``concurrent.futures.Future`` over one or more
messages. Whichever thread receives (see :mod:`par.client.io`) hands it each
reply as it arrives; the payload is unpickled only when the user asks for the
value, so receiving never spends time on results nobody reads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import operator
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, Future
from concurrent.futures._base import PENDING
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import protocol, serialize
from ..errors import CompositeError, RemoteError, remote_error_from
from .outputs import ExecuteReply, record_reply, show_new, show_output, show_result

if TYPE_CHECKING:
    from .client import Client


class Metadata(dict[str, Any]):
    """Per-message metadata, readable as attributes (``md.engine_id``).

    ``positions`` (an attribute, not a key) holds, for each of ``outputs``, how much
    stdout and stderr the task had written before it, so outputs show in order.
    """

    __slots__ = ("positions",)  # no instance dict: one object fewer for the collector

    positions: list[tuple[int, int]]

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


# Every key of a message's metadata, in ipyparallel's order; the mutable ones are made anew.
_BLANK = dict.fromkeys(
    [
        "msg_id",
        "submitted",
        "started",
        "completed",
        "received",
        "engine_id",
        "engine_uuid",
        "status",
        "error",
        "stdout",
        "stderr",
        "outputs",
        "follow",
        "after",
        "label",
        "execute_input",
        "execute_result",
        "data",
    ]
)
_BLANK.update(stdout="", stderr="")


def new_metadata(msg_id: str, submitted: float, **extra: Any) -> Metadata:
    """Metadata of a freshly submitted message."""
    md = Metadata(_BLANK)  # a copy of a template: this runs for every task sent
    md["msg_id"] = msg_id
    md["submitted"] = _dt(submitted)
    md["outputs"], md["follow"], md["after"], md["data"] = [], [], [], {}
    if extra:
        md.update(extra)
    md.positions = []
    return md


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


class Reply:
    """An engine's (or the controller's) reply to one message."""

    __slots__ = ("buffers", "header", "payload")

    def __init__(
        self, header: dict[str, Any], payload: Sequence[Any], buffers: Sequence[Any]
    ) -> None:
        self.header = header
        self.payload = payload
        self.buffers = buffers or ()  # one object fewer held for a result without buffers

    @property
    def ok(self) -> bool:
        """True if the request succeeded."""
        return self.header.get("st") == "ok"

    def value(self) -> Any:
        """The returned object (unpickled now)."""
        return serialize.loads(self.payload[0], self.buffers)

    def error(self) -> RemoteError:
        """The error this reply carries."""
        content = protocol.decode(self.payload[0]) if self.payload else {}
        return remote_error_from(content, self.header.get("e"), self.header.get("m", "apply"))


class _Condition(threading.Condition):
    """A ``threading.Condition`` over an RLock that keeps no bound methods of its lock.

    Every result is a Future with a condition of its own, and Condition keeps five bound
    methods and a deque per instance: a loop of ``apply_async`` spent a third of its time
    in the garbage collector, walking them among the results held."""

    _waiters: Any = ()  # a deque once a thread waits: most results are never waited on

    def __init__(self) -> None:  # the base's would add the bound methods
        self._lock = threading.RLock()

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()  # type: ignore[attr-defined]
        self._waiters = ()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until notified or ``timeout`` (as ``Condition.wait``)."""
        if not self._waiters:
            self._waiters = deque()
        return super().wait(timeout)

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *args: Any) -> None:
        self._lock.__exit__(*args)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Acquire the lock (as ``Condition.acquire``)."""
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        """Release the lock (as ``Condition.release``)."""
        self._lock.release()

    def _release_save(self) -> Any:
        return self._lock._release_save()  # type: ignore[attr-defined]

    def _acquire_restore(self, state: Any) -> None:
        self._lock._acquire_restore(state)  # type: ignore[attr-defined]

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())  # type: ignore[attr-defined]


class AsyncResult(Future[Any]):
    """The pending result of one or more messages; a ``concurrent.futures.Future``."""

    def __init__(
        self,
        client: Client,
        msg_ids: list[str],
        fname: str = "",
        single: bool = True,
        targets: Any = None,
    ) -> None:
        # Future.__init__'s fields, with a lighter condition (see _Condition)
        self._condition = _Condition()
        self._state = PENDING
        self._result = None
        self._exception: BaseException | None = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []
        self._client = client
        self.msg_ids = list(msg_ids)
        self._fname = fname
        self._single = single and len(msg_ids) == 1
        self._targets = targets
        self._replies: dict[str, Reply] = {}
        self._order: list[str] = []
        # Notified at every partial delivery, shared by the client's results (one per result
        # would cost more than the task); not the Future's own condition, as Future.result
        # waits once and takes any wake-up for completion.
        self._cond = client._arrivals
        self._value_lock = self._condition._lock  # guards the value unpickled once
        self._has_value = False
        self._cached: Any = None
        # The result owns its messages' metadata: the client's dict of it is bounded and may
        # already have forgotten the first messages of a large map.
        self._metadata = client._metadata_of(self.msg_ids)
        self._metadata_by_id: dict[str, Metadata] | None = None  # made when first needed
        self._watchers: dict[str, list[AsyncResult]] = {}
        self._trackers: list[Any] = []
        if not self.msg_ids:  # a map over nothing: no reply will ever come to finish it
            self.set_result(None)

    # ---- filled in by the client's I/O thread --------------------------------------------

    def _metadata_of(self, msg_id: str) -> Metadata:
        """The metadata of one of this result's messages."""
        if len(self._metadata) == 1:
            return self._metadata[0]
        if self._metadata_by_id is None:
            self._metadata_by_id = dict(zip(self.msg_ids, self._metadata, strict=True))
        return self._metadata_by_id[msg_id]

    def _deliver(self, msg_id: str, reply: Reply) -> None:
        with self._cond:
            self._replies[msg_id] = reply
            self._order.append(msg_id)
            done = len(self._replies) == len(self.msg_ids)
            watchers = self._watchers.pop(msg_id, [])
            self._cond.notify_all()
        for watcher in watchers:
            watcher._deliver(msg_id, reply)
        if done:
            self._finish()

    def _watch(self, msg_id: str, other: AsyncResult) -> None:
        """Hand ``other`` this result's reply to ``msg_id`` (now if it is already here)."""
        with self._cond:
            reply = self._replies.get(msg_id)
            if reply is None:
                self._watchers.setdefault(msg_id, []).append(other)
        if reply is not None:
            other._deliver(msg_id, reply)

    def _finish(self) -> None:
        errors = [self._replies[m].error() for m in self.msg_ids if not self._replies[m].ok]
        if not errors:
            self.set_result(None)
        elif self._single:
            self.set_exception(errors[0])
        else:
            what = self._fname or "apply"
            self.set_exception(
                CompositeError(f"one or more exceptions raised in call to {what}", errors)
            )

    # ---- values ---------------------------------------------------------------------------

    def _values(self, return_exceptions: bool) -> list[Any]:
        out: list[Any] = []
        for m in self.msg_ids:
            reply = self._replies[m]
            if reply.ok and reply.header.get("m") == "execute":
                out.append(ExecuteReply(m, reply.header.get("ec"), self._metadata_of(m)))
            elif reply.ok:
                out.append(reply.value())
            elif return_exceptions:
                out.append(reply.error())
            else:
                raise reply.error()
        return out

    def _reconstruct(self, values: list[Any]) -> Any:
        return values[0] if self._single else values

    def _value(self) -> Any:
        with self._value_lock:
            if not self._has_value:
                self._cached = self._reconstruct(self._values(False))
                self._has_value = True
            return self._cached

    @staticmethod
    def _timeout(timeout: float | None) -> float | None:
        return None if timeout is None or timeout < 0 else timeout

    def get(
        self,
        timeout: float | None = None,
        return_exceptions: bool = False,
        return_when: str | None = None,
    ) -> Any:
        """Wait for and return the result; raise the remote error, or TimeoutError.

        With ``return_exceptions=True`` errors are returned in place of results.
        With ``return_when=FIRST_EXCEPTION`` the first error is raised as soon as it
        arrives, without waiting for the other messages.
        """
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
        if not self.done() and timeout != 0:
            # Receive the replies on this thread if the client's socket is free (see lead).
            deadline = None if timeout is None else time.monotonic() + timeout
            self._client._io.lead(self.done, timeout)
            if deadline is not None:
                timeout = max(deadline - time.monotonic(), 0)
        try:
            self.exception(timeout)
        except TimeoutError:
            return False
        return True

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
        ids = [md["engine_id"] for md in self._metadata]
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

    def split(self) -> tuple[AsyncResult, ...]:
        """One single-message AsyncResult per message, each filling in as its reply arrives."""
        parts = []
        for m in self.msg_ids:
            part = AsyncResult(self._client, [m], self._fname, single=True)
            self._watch(m, part)
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
        if all(isinstance(r, AsyncMapResult) for r in results):
            sizes = [n for r in results for n in r._sizes]
            joined = AsyncMapResult(client, ids, sizes, results[0]._fname)
        else:
            joined = AsyncResult(client, ids, results[0]._fname, single=False)
        for r in results:
            for m in r.msg_ids:
                r._watch(m, joined)
        return joined

    # ---- sending and output ---------------------------------------------------------------

    def _add_tracker(self, tracker: Any) -> None:
        """Track a send (a ``zmq.MessageTracker``) made with ``track=True``."""
        self._trackers.append(tracker)

    @property
    def sent(self) -> bool:
        """True once ZeroMQ no longer needs the buffers sent (always, unless ``track=True``)."""
        return all(t.done for t in self._trackers)

    def wait_for_send(self, timeout: float | None = -1) -> bool:
        """Wait until the sent buffers may be modified again; True if they may."""
        deadline = None if self._timeout(timeout) is None else time.monotonic() + timeout  # type: ignore[operator]
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
        stop = threading.Event()
        printer = threading.Thread(
            target=self._show_live, args=(stop, interval), name="par-stream", daemon=True
        )
        printer.start()
        try:
            yield self
        finally:
            stop.set()
            printer.join()

    def _show_live(self, stop: threading.Event, interval: float) -> None:
        shown: dict[str, list[int]] = {}  # msg id -> [stdout, stderr, outputs] shown
        while True:
            finished = stop.is_set()
            for md in self._metadata:
                show_new(md, shown.setdefault(md["msg_id"], [0, 0, 0]), finished)
            if finished:
                return
            stop.wait(interval)

    def display_outputs(self, groupby: str = "type", result_only: bool = False) -> None:
        """Show each message's stdout, stderr, rich outputs and execute result.

        ``groupby``: ``'type'`` (all stdout, then all stderr, then each engine's outputs,
        then the results), ``'engine'`` (everything of one engine together) or
        ``'order'`` (as ``'type'``, but the first outputs of every engine, then the
        second ones...). Rich outputs show through IPython's display in IPython, as their
        text otherwise. ``result_only``: only the execute results (after streaming).
        """
        if groupby not in ("type", "engine", "order"):
            raise ValueError(f"groupby must be 'type', 'engine' or 'order', not {groupby!r}")
        self.wait()
        mds = self._metadata
        if groupby == "engine":
            mds = sorted(mds, key=lambda md: (md["engine_id"] is None, md["engine_id"] or 0))
            for md in mds:
                if not result_only:
                    _print_block("stdout", md)
                    _print_block("stderr", md)
                    for entry in md["outputs"]:
                        show_output(entry, md["engine_id"])
                show_result(md)
            return
        if not result_only:
            for name in ("stdout", "stderr"):
                for md in mds:
                    _print_block(name, md)
            rounds = max((len(md["outputs"]) for md in mds), default=0) if groupby == "order" else 1
            for i in range(rounds):
                for md in mds:
                    chosen = md["outputs"] if groupby == "type" else md["outputs"][i : i + 1]
                    for entry in chosen:
                        show_output(entry, md["engine_id"])
        for md in mds:
            show_result(md)

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
        deadline = None if self._timeout(timeout) is None else time.monotonic() + timeout  # type: ignore[operator]
        total = len(self.msg_ids)

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

    def _wait_until(self, ready: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``ready()`` or ``timeout``, receiving on this thread if it can (see
        IOThread.lead)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not ready():
            self._client._io.lead(ready, timeout)
        left = None if deadline is None else max(deadline - time.monotonic(), 0)
        with self._cond:  # what is left (the client is closing: nothing to receive)
            self._cond.wait_for(ready, left)

    def _reached(self, return_when: str) -> bool:
        with self._cond:
            if return_when == FIRST_COMPLETED:
                return bool(self._replies)
            if return_when == FIRST_EXCEPTION:
                return any(not r.ok for r in self._replies.values())
        return False

    # ---- metadata -----------------------------------------------------------------------------

    @property
    def metadata(self) -> Any:
        """Metadata dict (single message) or list of them."""
        return self._metadata[0] if self._single else self._metadata

    @property
    def progress(self) -> int:
        """How many messages have replies."""
        return len(self._replies)

    @property
    def elapsed(self) -> float:
        """Seconds since the first submission (until now, or until ready)."""
        first = min(md["submitted"] for md in self._metadata)
        if self.done():
            received = [md["received"] for md in self._metadata if md["received"] is not None]
            last = max(received) if received else datetime.now(UTC)
        else:
            last = datetime.now(UTC)
        return (last - first).total_seconds()

    @property
    def wall_time(self) -> float:
        """Seconds from the first submission to the last reply received."""
        self.wait()
        first = min(md["submitted"] for md in self._metadata)
        last = max(md["received"] for md in self._metadata)
        return float((last - first).total_seconds())

    @property
    def serial_time(self) -> float:
        """Sum of the engines' compute times."""
        self.wait()
        return sum(
            (md["completed"] - md["started"]).total_seconds()
            for md in self._metadata
            if md["started"] is not None and md["completed"] is not None
        )

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
        first = _reduce_times(start, start_key)
        last = _reduce_times(end, end_key)
        return (last - first).total_seconds()

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        md = self.__dict__.get("_metadata")
        if md and key in md[0]:
            values = [m[key] for m in md]
            return values[0] if self._single else values
        raise AttributeError(f"{type(self).__name__!r} has no attribute {key!r}")

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self.__getattr__(key)
        value = self.get()
        return (value if not self._single else [value])[key]

    def __len__(self) -> int:
        return len(self.msg_ids)

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        state = "finished" if self.done() else "pending"
        return f"<{type(self).__name__}({self._fname}): {state}>"


class AsyncMapResult(AsyncResult):
    """The result of a map: a flat list, iterable as chunks arrive."""

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

    def __iter__(self) -> Iterator[Any]:
        if self.ordered:
            for m in self.msg_ids:
                self._wait_until(partial(operator.contains, self._replies, m))
                yield from self._chunk(m)
        else:
            seen = 0
            while seen < len(self.msg_ids):
                self._wait_until(partial(self._arrived_beyond, seen))
                with self._cond:
                    m = self._order[seen]
                seen += 1
                yield from self._chunk(m)

    def _arrived_beyond(self, n: int) -> bool:
        return len(self._order) > n

    def _chunk(self, msg_id: str) -> list[Any]:
        reply = self._replies[msg_id]
        if not reply.ok:
            raise reply.error()
        return list(reply.value())


class AsyncHubResult(AsyncResult):
    """Results looked up in the controller's task records, including other clients' tasks.

    Built from the replies the controller holds, one :class:`Reply` per finished
    message (headers as an engine's reply, optionally with ``sub``: the
    submission time). While messages are still pending there, a helper thread
    asks again every ``interval`` seconds through ``fetch(msg_ids)``, which
    returns the replies that are ready by then. Without ``replies`` and
    ``fetch`` it fills in like any AsyncResult, from replies the client's I/O
    thread delivers.
    """

    def __init__(
        self,
        client: Client,
        msg_ids: list[str],
        replies: Mapping[str, Reply] | None = None,
        fetch: Callable[[list[str]], Mapping[str, Reply]] | None = None,
        interval: float = 0.2,
        fname: str = "get_result",
    ) -> None:
        super().__init__(client, msg_ids, fname, single=len(msg_ids) == 1)
        for mid, reply in (replies or {}).items():
            self._take(mid, reply)
        if fetch is not None and not self.done():
            threading.Thread(
                target=self._poll, args=(fetch, interval), name="par-hub-result", daemon=True
            ).start()

    def _take(self, mid: str, reply: Reply) -> None:
        h = reply.header
        md = self._metadata_of(mid)
        if h.get("sub") is not None:
            md["submitted"] = _dt(h["sub"])
        md.update(
            received=_dt(time.time()),
            started=_dt(h.get("ts")),
            completed=_dt(h.get("tc")),
            engine_id=h.get("e"),
            status=h.get("st"),
            stdout="",
            stderr="",
            outputs=[],
            execute_result=None,
            data={},
        )
        md.positions = []
        reply = record_reply(md, reply)
        if not reply.ok and reply.payload:
            md["error"] = reply.error()
        self._deliver(mid, reply)

    def _poll(self, fetch: Callable[[list[str]], Mapping[str, Reply]], interval: float) -> None:
        while not self.done():
            pending = [m for m in self.msg_ids if m not in self._replies]
            try:
                found = fetch(pending)
            except Exception as exc:  # the client closed or the controller went away
                content = protocol.encode(
                    {"ename": type(exc).__name__, "evalue": str(exc), "traceback": ""}
                )
                for mid in pending:
                    header = {"t": "reply", "id": mid, "st": "error", "en": type(exc).__name__}
                    self._take(mid, Reply(header, [content], []))
                return
            for mid, reply in found.items():
                if mid not in self._replies:
                    self._take(mid, reply)
            time.sleep(interval)


def _reduce_times(times: Any, key: Callable[[Any], datetime]) -> datetime:
    """One time from a time or a list of them, refusing times not set yet."""
    many = times if isinstance(times, list | tuple) else [times]
    if not many or any(t is None for t in many):
        raise ValueError("timedelta needs times that are set (is the result ready?)")
    return many[0] if len(many) == 1 else key(many)


def _print_block(name: str, md: Metadata) -> None:
    """Print one message's stream, headed by its engine."""
    text = md[name]
    if text:
        out = sys.stderr if name == "stderr" else sys.stdout
        print(f"[{name}:{md['engine_id']}]", file=out)
        print(text, end="" if text.endswith("\n") else "\n", file=out)
