"""What the controller sends clients: replies, events and query answers.

Replies of one loop pass wait here, per client, and go out together at the
end of the pass: one reply as it came (its frames forwarded unchanged), or
else as one reply batch (see :mod:`par.messages`). Each message costs a
call into ZeroMQ at every hop, and a client busy with many small tasks gets
their replies in a few messages rather than one each.

Everything else (events, query answers) first sends what waits, so that a
client sees a task's reply before an event or answer that follows from it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import zmq

from ..messages import DATA, EVENT, KIND, TIME, join_replies
from ..protocol import Session, send_frames

# A reply on its way to a client: header, payload, buffers, and its frames as received
# (None if it came in a batch), which are forwarded as they are when it travels alone.
Outgoing = tuple[dict[str, Any], list[Any], list[Any], list[Any] | None]


class Outbox:
    """Sends clients what the controller has for them, a pass's replies together."""

    def __init__(self, sock: zmq.Socket, session: Session) -> None:
        self.sock = sock
        self.session = session
        self.clients: dict[bytes, dict[str, Any]] = {}  # clients connected, by identity
        self._queued: dict[bytes, list[Outgoing]] = {}

    def reply(
        self,
        client: bytes,
        header: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
        frames: list[Any] | None = None,
    ) -> None:
        """Queue a reply for a client (``frames``: as received, to forward unchanged)."""
        queued = self._queued.get(client)
        if queued is None:
            self._queued[client] = [(header, payload, buffers, frames)]
        else:
            queued.append((header, payload, buffers, frames))

    def flush(self) -> None:
        """Send each client its queued replies: one as it came, else as one batch."""
        if not self._queued:
            return
        for client, replies in self._queued.items():
            if len(replies) == 1:
                ((_, _, _, frames),) = replies
                if frames is not None:
                    self.forward(client, frames)
                    continue
            batch = join_replies([(h, p, b) for h, p, b, _ in replies])
            self.forward(client, self.session.serialize(*batch))
        self._queued.clear()

    def forward(self, client: bytes, body: Sequence[Any]) -> None:
        """Send a client a message's frames, as they are."""
        send_frames(self.sock, [client, *body])

    def send(self, client: bytes, header: dict[str, Any], payload: Sequence[Any] = ()) -> None:
        """Send a client a new message, after the replies it waits for."""
        self.flush()
        self.forward(client, self.session.serialize(header, payload))

    def event(self, kind: str, data: dict[str, Any], to: Iterable[bytes] | None = None) -> None:
        """Tell every client (or those ``to``) of an event, after the replies they wait for."""
        self.flush()
        frames = self.session.serialize({KIND: "event", EVENT: kind, DATA: data, TIME: time.time()})
        for client in self.clients if to is None else to:
            self.forward(client, frames)
