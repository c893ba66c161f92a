"""A Future over several messages, completed reply by reply: what the receiving side fills in.

A :class:`MessageFuture` is the part of every result the client's receiving
thread (see :mod:`par.client.io`) deals with: it takes each message's reply
(:meth:`MessageFuture.deliver`) and the message's metadata, completes the
``concurrent.futures.Future`` once every message has its reply, and turns the
replies into a value only when asked. What users call on a result is
:class:`~par.client.asyncresult.AsyncResult`, built on it.

Results are many (one per task in a loop of ``apply_async``), so a
MessageFuture is kept light: a lighter condition than ``Future``'s own, the
client's shared ``arrivals`` condition for partial deliveries, and its
messages' metadata made once, in a batch, by the ledger.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, FIRST_EXCEPTION, Future
from concurrent.futures._base import PENDING
from typing import TYPE_CHECKING, Any

from ..errors import CompositeError
from .outputs import ExecuteReply
from .replies import Metadata, Reply

if TYPE_CHECKING:
    from .client import Client


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


class MessageFuture(Future[Any]):
    """A Future over one or more messages, completed once each has its reply.

    ``single``: its value is its one message's, not a list; ``targets`` is taken as
    ipyparallel's AsyncResult takes it, and unused.
    """

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
        self._replies: dict[str, Reply] = {}
        self._order: list[str] = []
        ledger = client.ledger
        # Notified at every partial delivery, shared by the client's results (see ledger.py);
        # not the Future's own condition, as Future.result waits once and takes any wake-up
        # for completion.
        self._cond = ledger.arrivals
        self._value_lock = self._condition._lock  # guards the value unpickled once
        self._has_value = False
        self._cached: Any = None
        # The result owns its messages' metadata: the client's dict of it is bounded and may
        # already have forgotten the first messages of a large map.
        self._metadata = ledger.metadata_of(self.msg_ids)
        self._metadata_by_id: dict[str, Metadata] | None = None  # made when first needed
        self._watchers: dict[str, list[MessageFuture]] = {}
        self._trackers: list[Any] = []  # of sends made with track=True (see AsyncResult.sent)

    # ---- filled in by the thread receiving -----------------------------------------------

    def metadata_of(self, msg_id: str) -> Metadata:
        """The metadata of one of this result's messages."""
        if len(self._metadata) == 1:
            return self._metadata[0]
        if self._metadata_by_id is None:
            self._metadata_by_id = dict(zip(self.msg_ids, self._metadata, strict=True))
        return self._metadata_by_id[msg_id]

    def deliver(self, msg_id: str, reply: Reply) -> None:
        """Take in the reply to one of this result's messages (the client's receiving
        thread calls this, as an executor calls ``set_result``)."""
        with self._cond:
            self._replies[msg_id] = reply
            self._order.append(msg_id)
            done = len(self._replies) == len(self.msg_ids)
            watchers = self._watchers.pop(msg_id, [])
            self._cond.notify_all()
        for watcher in watchers:
            watcher.deliver(msg_id, reply)
        if done:
            self._finish()

    def _watch(self, msg_id: str, other: MessageFuture) -> None:
        """Hand ``other`` this result's reply to ``msg_id`` (now if it is already here)."""
        with self._cond:
            reply = self._replies.get(msg_id)
            if reply is None:
                self._watchers.setdefault(msg_id, []).append(other)
        if reply is not None:
            other.deliver(msg_id, reply)

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
                out.append(ExecuteReply(m, reply.header.get("ec"), self.metadata_of(m)))
            elif reply.ok:
                out.append(reply.value())
            elif return_exceptions:
                out.append(reply.error())
            else:
                raise reply.error()
        return out

    def _reconstruct(self, values: list[Any]) -> Any:
        return values[0] if self._single else values

    def value_of(self, msg_id: str) -> Any:
        """The value of one of this result's messages, or the error it raised (KeyError
        until its reply came)."""
        reply = self._replies[msg_id]
        return reply.value() if reply.ok else reply.error()

    def _value(self) -> Any:
        with self._value_lock:
            if not self._has_value:
                self._cached = self._reconstruct(self._values(False))
                self._has_value = True
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
        with self._cond:  # what is left (the client is closing: nothing to receive)
            self._cond.wait_for(ready, left)

    def _reached(self, return_when: str) -> bool:
        with self._cond:
            if return_when == FIRST_COMPLETED:
                return bool(self._replies)
            if return_when == FIRST_EXCEPTION:
                return any(not r.ok for r in self._replies.values())
        return False

    @property
    def progress(self) -> int:
        """How many messages have replies."""
        return len(self._replies)
