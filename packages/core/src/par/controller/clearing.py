"""Clearing engines' namespaces: a control operation, answered once every engine did it.

``rc.clear()`` is a control message in ipyparallel, not a task: it leaves no
record, no entry in the client's ``history`` or ``metadata``, and it goes
ahead of the work queued for the engines. The hub tells each engine named on
its control connection (as abort and stop travel, see control.py); the
engine's control thread empties the namespace and says ``cleared``. The
client's query is answered once each engine has, or has been lost (its
namespace went with it): :class:`Clearing` keeps the queries waiting.
"""

from __future__ import annotations

from ..messages import DATA, KIND, OK, QUERY_ID
from .outbox import Outbox


class Clearing:
    """The clear queries waiting for their engines, by query id."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        # query id -> (the client asking, the engines named, those still to answer)
        self.waiting: dict[str, tuple[bytes, list[int], set[int]]] = {}

    def start(self, qid: str, client: bytes, engine_ids: list[int]) -> None:
        """Wait for ``engine_ids`` to clear, then answer ``client``'s query ``qid``."""
        self.waiting[qid] = (client, engine_ids, set(engine_ids))
        self._answer_if_done(qid)

    def cleared(self, qid: str, engine_id: int) -> None:
        """An engine said it cleared its namespace for query ``qid``."""
        if qid in self.waiting:
            self.waiting[qid][2].discard(engine_id)
            self._answer_if_done(qid)

    def lost(self, engine_id: int) -> None:
        """An engine is gone: no query waits for it any more."""
        for qid, (_, _, left) in list(self.waiting.items()):
            if engine_id in left:
                left.discard(engine_id)
                self._answer_if_done(qid)

    def _answer_if_done(self, qid: str) -> None:
        client, engine_ids, left = self.waiting[qid]
        if not left:
            del self.waiting[qid]
            self.outbox.send(client, {KIND: "qr", QUERY_ID: qid, OK: True, DATA: engine_ids})
