"""What the controller sends clients: replies, events and query answers.

Replies of one loop pass wait here, per client, and go out together at the
end of the pass: one reply as it came (its frames forwarded unchanged), or
else as one reply batch (see :mod:`par.messages`). Each message costs a
call into ZeroMQ at every hop, and a client busy with many small tasks gets
their replies in a few messages rather than one each. A broadcast the hub
gathers (``coalesce``) waits here until all its replies are in, whoever
made them: an engine, or the controller failing a target that died or was
never up; then they go out together.

Tasks the controller fails together with one error (an abort of many) go to
their client as failure batches, after the pass's replies. Everything else
(events, query answers) first sends what waits, so that a client sees a
task's reply before an event or answer that follows from it.
With a durable record store the pass's records are written before its
replies leave: a result a client received is in the database. Everything
leaves through :class:`~par.controller.delivery.Delivery`, which holds what a
slow client cannot take yet.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq

from ..messages import DATA, EVENT, IDS, KIND, TIME, join_replies
from ..protocol import Session
from .delivery import REPLIES_BYTES, Delivery, batches
from .records import RecordStore

FAILED_BATCH = 10_000  # ids a failure batch names at most (their message about 300 KB)
# A reply on its way to a client: header, payload, buffers, and its frames as received
# (None if it came in a batch), which are forwarded as they are when it travels alone.
Outgoing = tuple[dict[str, Any], list[Any], list[Any], list[Any] | None]


@dataclass(slots=True)
class _Gathering:
    """A broadcast whose replies go to its client as one message."""

    n: int
    replies: list[Outgoing] = field(default_factory=list)


class Outbox:
    """Sends clients what the controller has for them, a pass's replies together."""

    def __init__(self, sock: zmq.Socket, session: Session, records: RecordStore) -> None:
        self.delivery = Delivery(sock)
        self.session = session
        self.records = records
        self.clients: dict[bytes, dict[str, Any]] = {}  # clients connected, by identity
        self._queued: dict[bytes, list[Outgoing]] = {}
        # failure batches, by client: the ids, the header they share, the error's content
        self._failed: dict[bytes, list[tuple[list[str], dict[str, Any], bytes]]] = {}
        self._gathering: dict[str, _Gathering] = {}  # by the broadcast's first message id

    def gather(self, group: str, n: int) -> None:
        """Hold the ``n`` replies of broadcast ``group`` until all came, then send them."""
        self._gathering[group] = _Gathering(n)

    def reply(
        self,
        client: bytes,
        header: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
        frames: list[Any] | None = None,
        group: str | None = None,
    ) -> None:
        """Queue a reply for a client (``frames``: as received, to forward unchanged;
        ``group``: the gathered broadcast it belongs to)."""
        replies = [(header, payload, buffers, frames)]
        if group is not None and (gathering := self._gathering.get(group)) is not None:
            gathering.replies += replies
            if len(gathering.replies) < gathering.n:
                return
            del self._gathering[group]
            replies = gathering.replies
        self._queued.setdefault(client, []).extend(replies)

    def flush(self) -> None:
        """Send each client its queued replies: one as it came, else as batches of about
        ``REPLIES_BYTES`` at most; then its failure batches, ``FAILED_BATCH`` ids each."""
        if not self._queued and not self._failed:
            return
        if self.records.durable and not self.records.flush():
            return  # a result a client receives is in the database: the replies wait
        for client, queued in self._queued.items():
            for replies in batches(queued, REPLIES_BYTES):
                if len(replies) == 1:
                    ((_, _, _, frames),) = replies
                    if frames is not None:
                        self.forward(client, frames)
                        continue
                batch = join_replies([(h, p, b) for h, p, b, _ in replies])
                self.forward(client, self.session.serialize(*batch))
        self._queued.clear()
        for client, failures in self._failed.items():
            for msg_ids, header, content in failures:
                for lo in range(0, len(msg_ids), FAILED_BATCH):
                    head = {**header, KIND: "failed", IDS: msg_ids[lo : lo + FAILED_BATCH]}
                    self.forward(client, self.session.serialize(head, [content]))
        self._failed.clear()

    def forward(self, client: bytes, body: Sequence[Any], watching: bool = False) -> None:
        """Send a client a message's frames, as they are (``watching``: a monitor's, which
        a slow client misses rather than holds)."""
        self.delivery.send(client, list(body), watching)

    def send(self, client: bytes, header: dict[str, Any], payload: Sequence[Any] = ()) -> None:
        """Send a client a new message, after the replies it waits for."""
        self.flush()
        self.forward(client, self.session.serialize(header, payload))

    def failed(
        self, client: bytes, msg_ids: list[str], header: dict[str, Any], content: bytes
    ) -> None:
        """Queue news for a client that the controller failed these tasks with one error
        (a failure batch: ``header`` has the status, error name and method they share):
        it goes with the pass's replies, and as they do, once their records are stored."""
        self._failed.setdefault(client, []).append((msg_ids, header, content))

    def event(self, kind: str, data: dict[str, Any], to: Iterable[bytes] | None = None) -> None:
        """Tell every client (or those ``to``) of an event, after the replies they wait for."""
        self.flush()
        frames = self.session.serialize({KIND: "event", EVENT: kind, DATA: data, TIME: time.time()})
        watching = to is not None  # events to chosen clients are the monitors' feed
        for client in self.clients if to is None else to:
            self.forward(client, frames, watching)
