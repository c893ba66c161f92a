"""The hub's books of requests: those pending, the record of each, the counts.

A request is pending from the moment the controller books it (see
requests.py) until its reply comes (replies.py) or the controller answers
it itself: with an error (its engine is gone, its dependencies cannot be
met) or as aborted. Its record outlives it, within the record store's
bounds, for queries, resubmission and other clients' ``get_result``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from .. import protocol
from ..messages import ENAME, ENGINE, ID, KIND, METHOD, STATUS
from .engines import Pending
from .feed import Feed
from .outbox import Outbox
from .records import RecordStore

EARLY_ABORTS = 10_000  # aborted ids not seen yet that are remembered


class Ledger:
    """Requests pending and the records of all, with counts by outcome."""

    def __init__(self, records: RecordStore, outbox: Outbox, feed: Feed) -> None:
        self.pending: dict[str, Pending] = {}  # by message id
        self.records = records
        self.counts = {"submitted": 0, "completed": 0, "failed": 0, "aborted": 0}
        self.outbox = outbox
        self.feed = feed
        # Message ids aborted before they came here (see abort_on_arrival), oldest first.
        self._early_aborts: OrderedDict[str, None] = OrderedDict()

    def abort_on_arrival(self, msg_ids: Iterable[str]) -> None:
        """Note aborted tasks the controller has not seen yet: a client's direct requests
        on their way through the direct device, aborted once booked (the latest
        ``EARLY_ABORTS``; an id that never comes is forgotten in time)."""
        early = self._early_aborts
        for mid in msg_ids:
            early[mid] = None
        while len(early) > EARLY_ABORTS:
            early.popitem(last=False)

    def aborted_early(self, msg_ids: Iterable[str]) -> list[str]:
        """Which of these tasks, now booked, were aborted before they came (forgotten now)."""
        early = self._early_aborts
        if not early:
            return []
        found = [mid for mid in msg_ids if isinstance(mid, str) and mid in early]
        for mid in found:
            del early[mid]
        return found

    def fail(
        self, p: Pending, ename: str, evalue: str, engine: int | None, status: str = "error"
    ) -> None:
        """Answer a request the controller itself fails (or, with status 'aborted',
        aborts); it is no longer in :attr:`pending`."""
        content = protocol.error_content(ename, evalue)
        header = self._finish(p, ename, content, engine, status)
        self.outbox.reply(p.client, header, [content], [], group=p.group)

    def fail_together(self, tasks: list[Pending], ename: str, evalue: str, status: str) -> None:
        """Answer many requests the controller fails (or aborts) with one error, as
        :meth:`fail` does each, but each client hears of them in a few messages of ids
        with the error once (:meth:`Outbox.failed`): aborting a million queued tasks
        was a million replies, which kept their client busy for minutes."""
        content = protocol.error_content(ename, evalue)
        together: dict[tuple[bytes, str], list[str]] = {}
        for p in tasks:
            header = self._finish(p, ename, content, None, status)
            if p.group is not None:  # a gathered broadcast's: it goes with the rest of it
                self.outbox.reply(p.client, header, [content], [], group=p.group)
            else:
                together.setdefault((p.client, p.method), []).append(p.msg_id)
        for (client, method), ids in together.items():
            self.outbox.failed(client, ids, {STATUS: status, ENAME: ename, METHOD: method}, content)

    def _finish(
        self, p: Pending, ename: str, content: bytes, engine: int | None, status: str
    ) -> dict[str, Any]:
        """Record a request the controller fails, and count it; its reply's header."""
        header = {KIND: "reply", ID: p.msg_id, STATUS: status, ENAME: ename, ENGINE: engine}
        header[METHOD] = p.method
        self.records.finish(p.msg_id, header, [content])
        self.counts["failed" if status == "error" else "aborted"] += 1
        if status == "error":
            self.feed.ran(None, None, time.time(), failed=True)  # no engine counts it
            self.feed.error(header, content, p.label)
        return header

    def outcome(self, msg_id: str) -> tuple[str, int | None]:
        """How a task ended ('ok' or 'error', and where it ran), or that it is 'pending' or
        'unknown'."""
        if msg_id in self.pending:
            return "pending", None
        rec = self.records.get(msg_id)
        if rec is None:
            return "unknown", None
        if rec.status == "ok":
            return "ok", rec.engine_id
        if rec.status == "pending":
            return "pending", None
        return "error", rec.engine_id
