"""Sending to clients, and holding back what a slow one cannot take yet.

Everything the hub sends a client (replies of load-balanced tasks, streamed
output, events, query answers) leaves through its client ROUTER, whose queue
for each client holds at most ``client_hwm`` messages. A client that does not
read (stopped with SIGSTOP or Ctrl-Z, or behind a slow link) fills its queue;
what it cannot take then waits here, in order, and the controller stops
dispatching that client's queued tasks (see ``TaskScheduler.assign``) until
it has caught up. Replies travel together in messages of about
``REPLIES_BYTES`` at most (a larger reply alone), so what a slow client costs
the controller is bounded: its queue of messages, plus the replies of the
tasks that were already running for it. Nothing is dropped for it but what
only watches: a monitor's activity events, which it asks for again when it
misses one (see :mod:`par.controller.feed`).

The socket has ``ROUTER_MANDATORY`` set, so a full queue is an error at once
(``zmq.Again``) rather than a silent drop, and a client that is gone
(``EHOSTUNREACH``) loses what was for it, as before.
"""

from __future__ import annotations

import errno
import logging
from collections import deque
from typing import Any

import zmq

from ..protocol import Frame, nbytes, send_frames

log = logging.getLogger("par.controller")
_MORE_NOWAIT = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
REPLIES_BYTES = 256 << 10  # replies sent together to a client take about this much at most


def batches(parts: list[Any], limit: int) -> list[list[Any]]:
    """Split replies (header, payload, buffers, ...) into consecutive groups of at most
    ``limit`` bytes of payload and buffers each (a larger reply makes a group alone)."""
    out: list[list[Any]] = [[]]
    size = 0
    for part in parts:
        n = nbytes(part[1]) + nbytes(part[2])
        if out[-1] and size + n > limit:
            out.append([])
            size = 0
        out[-1].append(part)
        size += n
    return out


class Delivery:
    """Sends to clients over the client ROUTER, holding what a full client cannot take."""

    def __init__(self, sock: zmq.Socket) -> None:
        self.sock = sock
        self.held: dict[bytes, deque[list[Frame]]] = {}  # by slow client, in order
        self.skipped = 0  # messages that only watch, not sent to a slow client

    def slow(self, client: bytes) -> bool:
        """Whether what is sent to this client waits here."""
        return client in self.held

    def send(self, client: bytes, body: list[Frame], watching: bool = False) -> None:
        """Send a message (its frames after the client's identity), or hold it if the
        client is slow; ``watching``: a monitor's, skipped for a slow client."""
        held = self.held.get(client)
        if held is not None:
            if watching:
                self.skipped += 1
            else:
                held.append(body)
        elif not self._sent(client, body):
            if watching:
                self.skipped += 1
            else:
                log.info("client %s is not reading; holding its replies", client.hex()[:8])
                self.held[client] = deque([body])

    def flush(self) -> list[bytes]:
        """Send what waits, as far as each slow client takes it; return the clients that
        caught up (or are gone)."""
        caught_up = []
        for client, held in self.held.items():
            while held and self._sent(client, held[0]):
                held.popleft()
            if not held:
                caught_up.append(client)
        for client in caught_up:
            del self.held[client]
            log.info("client %s reads again", client.hex()[:8])
        return caught_up

    def forget(self, client: bytes) -> None:
        """Drop what waits for a client that left."""
        self.held.pop(client, None)

    def _sent(self, client: bytes, body: list[Any]) -> bool:
        """Send now if the client's queue has room; False if it is full. A client that is
        gone is sent nothing (True: there is nothing to wait for)."""
        try:  # the identity frame is where a full queue or a gone client shows
            self.sock.send(client, _MORE_NOWAIT)
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno != errno.EHOSTUNREACH:
                raise
            return True
        send_frames(self.sock, body)
        return True
