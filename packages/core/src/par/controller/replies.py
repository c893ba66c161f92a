"""Accounting for engines' replies, and passing them on to clients.

A reply comes on the engine's work connection (the answer to a request this
loop sent: load-balanced, or direct through the hub; or a large reply to a
direct request, which its engine sends its client this way, naming it) or as
a copy of one the direct device already passed to its client. Either way,
alone or in a reply batch, each finishes its task in the ledger: the counts,
the engine's load and task time, the record, the tasks that depend on it and
the monitors' feed. Then it goes to its client (unless the device took it
there), to every other client that asked for it (``resend``); the outbox
holds a gathered broadcast's replies until all are in.

A load-balanced task that failed goes back to the queue instead when it has
retries left, or when an engine refused it (TaskRejectError) and another
may run it. Tasks an engine aborted before they started come as a list of
ids on its control connection, and are answered here as aborted.
"""

from __future__ import annotations

import time
from typing import Any

from ..messages import (
    CLIENT,
    COMPLETED,
    ENAME,
    ID,
    LOAD_BALANCED,
    STARTED,
    STATUS,
    STDERR,
    STDOUT,
    split_replies,
)
from ..protocol import Message
from .dependencies import Dependencies
from .engines import Engine, EngineRegistry, Pending
from .ledger import Ledger
from .outbox import Outbox
from .scheduler import TaskScheduler

# Errors that say this engine cannot run the task: another engine may.
RETRY_ELSEWHERE = ("TaskRejectError", "UnmetDependency")


class Replies:
    """Finishes tasks from their replies and passes the replies on."""

    def __init__(
        self,
        ledger: Ledger,
        engines: EngineRegistry,
        tasks: TaskScheduler,
        dependencies: Dependencies,
        outbox: Outbox,
    ) -> None:
        self.ledger = ledger
        self.engines = engines
        self.tasks = tasks
        self.dependencies = dependencies
        self.outbox = outbox

    def account(self, engine: Engine, msg: Message, delivered: bool) -> None:
        """Account for an engine's reply, or its batch of replies (``delivered``: the
        direct device passed them to their client already)."""
        to = msg.header.get(CLIENT)  # a direct reply sent through the hub names its client
        if msg.kind == "reply":
            body = None if delivered else msg.body()
            self._finish(engine, msg.header, msg.payload, msg.buffers, body, delivered, to)
        elif msg.kind == "replies":
            for h, payload, buffers in split_replies(msg.header, msg.payload, msg.buffers):
                self._finish(engine, h, payload, buffers, None, delivered, to)

    def _finish(
        self,
        engine: Engine,
        h: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
        body: list[Any] | None,
        delivered: bool,
        to: bytes | None = None,
    ) -> None:
        """Account for one finished request and pass its reply on (``body``: as received;
        ``delivered``: its client has it already, from the direct device; ``to``: the
        client of a direct reply the engine sent through the hub, which gets it even if
        these books never had its request)."""
        ledger = self.ledger
        mid = str(h.get(ID))
        p = ledger.pending.get(mid)
        engine.outstanding.pop(mid, None)
        status = h.get(STATUS, "ok")
        if (
            p is not None
            and p.queue == LOAD_BALANCED
            and status == "error"
            and self._retry(p, engine, h)
        ):
            engine.failed += 1
            self._tell_monitors(engine, h, failed=True)
            self.tasks.freed(engine)
            return
        ledger.pending.pop(mid, None)
        started, completed = h.get(STARTED), h.get(COMPLETED)
        if isinstance(started, float) and isinstance(completed, float):
            took, avg = completed - started, engine.task_time
            engine.task_time = took if avg is None else 0.8 * avg + 0.2 * took
        if status == "ok":
            engine.completed += 1
            ledger.counts["completed"] += 1
        else:  # an engine answers an abort on its control connection (see aborted)
            engine.failed += 1
            ledger.counts["failed"] += 1
            ledger.feed.error(h, payload[0] if payload else None, p.label if p else None)
        self._tell_monitors(engine, h, failed=status != "ok")
        ledger.records.finish(mid, h, [*payload, *buffers])
        if p is not None:
            if p.group is not None or not delivered:
                self.outbox.reply(p.client, h, payload, buffers, body, p.group)
            for watcher in p.watchers:
                self.outbox.reply(watcher, h, payload, buffers, body)
        elif isinstance(to, bytes):
            self.outbox.reply(to, h, payload, buffers, body)
        if mid in self.dependencies.dependents:
            self.dependencies.finished(mid)
        self.tasks.freed(engine)

    def _tell_monitors(self, engine: Engine, h: dict[str, Any], failed: bool) -> None:
        """Add a task an engine finished to the monitors' feed: its work and its output."""
        feed = self.ledger.feed
        if not feed.monitors:  # nobody watches: nothing to add (the usual case)
            return
        feed.ran(engine.id, h.get(STARTED), h.get(COMPLETED) or time.time(), failed)
        for key, stream in ((STDOUT, "stdout"), (STDERR, "stderr")):
            if key in h:
                feed.output(engine.id, stream, str(h[key]))

    def aborted(self, engine: Engine, ids: list[str]) -> None:
        """Answer tasks an engine says it will never run, aborted while they waited there."""
        ledger = self.ledger
        for mid in ids:
            p = engine.outstanding.pop(mid, None)
            if p is None:
                continue
            ledger.pending.pop(mid, None)
            ledger.fail(p, "TaskAborted", "aborted before start", engine.id, "aborted")
            if mid in self.dependencies.dependents:
                self.dependencies.finished(mid)
        self.tasks.freed(engine)

    def _retry(self, p: Pending, engine: Engine, h: dict[str, Any]) -> bool:
        """Queue a failed load-balanced task again, for an engine it has not failed on: if
        it was rejected, or has retries left.

        With no such engine up, a rejected task, or one without a timeout, fails with its
        error now; one with a timeout waits for a new engine, and fails with TaskTimeout
        once its timeout passes (see ``TaskScheduler.expired``), as in ipyparallel.
        """
        rejected = h.get(ENAME) in RETRY_ELSEWHERE
        if not rejected and p.retries <= 0:
            return False
        p.excluded |= {engine.id}
        able = {e.id for e in self.engines.up()} - p.excluded
        if p.allowed is not None:
            able &= p.allowed
        if not able and (rejected or p.deadline is None):
            return False
        if not rejected:
            p.retries -= 1
        p.engine = None
        self.tasks.submit(p)
        return True

    def expire(self) -> None:
        """Fail the queued tasks no engine may run whose timeout has passed."""
        for p in self.tasks.expired(time.monotonic()):
            self.ledger.pending.pop(p.msg_id, None)
            self.ledger.fail(
                p, "TaskTimeout", "no engine it may run on came within its timeout", None
            )
