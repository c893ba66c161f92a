"""The direct path: a ZeroMQ device in C that routes direct requests and replies.

A client sends a direct request as ``[engine identity, *message]`` to the
device's client side; the device hands it to that engine and the engine's
reply, ``[client identity, *message]``, straight back, without Python on the
way: pyzmq's ``monitored_queue`` swaps the two identity frames between its
ROUTER sockets and runs without Python's GIL, in a relay process of its own
(relays.py). The hub sees a copy of every message (``[IN or OUT,
destination, sender, *message]``), pushed to it over ``ipc://``, and keeps its
books from those: records, each engine's outstanding requests, errors for
requests to engines that are gone.

The device takes every message to have at least two frames after the
sender's identity, as every message of ours does. After a message with just
one (garbage) it waits for the next message from that side and reads it as
the rest, losing it; that message is in the garbage's copy, so the hub
finds it there and delivers it itself (see ``Controller._handle_copy``).
While it waits it passes nothing on, so its relay nudges both sides now and
then (:func:`nudge_every`) with a message of its own that completes the
garbage (:func:`nudge`), which bounds how long garbage holds the device. The
copies of the nudges also tell the hub the device runs. Each nudge wakes the
device twice and the hub twice (for its copies), so they come no more often
than those two needs (they came every half heartbeat).
"""

from __future__ import annotations

from typing import Any

import zmq
from zmq.devices import monitored_queue

# Prefixes of the copies, unlike any identity or head frame.
IN = b"par-direct-in"  # a copy of a request, client to engine
OUT = b"par-direct-out"  # a copy of a reply (or an engine's hello), engine to client
NUDGE = b"par-direct-nudge"  # the identity the device is nudged with
SYNC = b"par-direct-sync"  # the identity of the hub's messages that mark where copies are
MARKS = (NUDGE, SYNC)
NUDGE_EVERY = 2.0  # seconds between the relay's nudges, unless its timeout wants them sooner


def run(clients: zmq.Socket, engines: zmq.Socket, copies: zmq.Socket) -> None:
    """Run the device between the clients' and the engines' ROUTERs, sending a copy of
    everything it passes on ``copies``, until the context terminates (in the relay)."""
    monitored_queue(clients, engines, copies, IN, OUT)


def mark_of(copy: list[Any]) -> bytes | None:
    """NUDGE or SYNC if a copy is of a message with that identity, else None. Its copy is
    ``[IN, b"", identity, b""]``, or, after garbage, ``[IN, garbage, its sender, identity,
    b"", b""]``."""
    for frame in copy[2:4]:
        if len(frame) == len(NUDGE) or len(frame) == len(SYNC):
            mark = bytes(frame)
            if mark in MARKS:
                return mark
    return None


def nudgers(ctx: zmq.Context, urls: list[str]) -> list[zmq.Socket]:
    """Sockets that nudge the device's ROUTERs, which listen on ``urls`` (in-process: no
    Curve handshake)."""
    socks = []
    for url in urls:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, NUDGE)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(url)
        socks.append(sock)
    return socks


def nudge_every(relay_timeout: float) -> float:
    """Seconds between the relay's nudges: ``NUDGE_EVERY``, or often enough that a hub
    whose ``--relay-timeout`` is short hears the device run several times within it (and
    takes it for stuck, waiting no more for its copies, well before it takes its own loop
    for held up: see ``Controller.sync_copies`` and ``_watch_relays``)."""
    return min(NUDGE_EVERY, relay_timeout / 8)


def nudge(socks: list[zmq.Socket]) -> None:
    """Complete a one-frame message the device may be waiting on the rest of; otherwise
    the nudge goes to no one."""
    for sock in socks:
        sock.send_multipart([b"", b""], zmq.NOBLOCK)
