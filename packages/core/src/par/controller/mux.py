"""The direct path: a ZeroMQ device in C that routes direct requests and replies.

A client sends a direct request as ``[engine identity, *message]`` to the
device's client side; the device hands it to that engine and the engine's
reply, ``[client identity, *message]``, straight back, without Python on the
way: pyzmq's ``monitored_queue`` swaps the two identity frames between its
ROUTER sockets and runs in this thread without Python's GIL. The hub sees a
copy of every message (``[IN or OUT, destination, sender, *message]``) on an
in-process socket and keeps its books from those: records, each engine's
outstanding requests, errors for requests to engines that are gone.

The device takes every message to have at least two frames after the
sender's identity, as every message of ours does. After a message with just
one (garbage) it waits for the next message from that side and reads it as
the rest, losing it; that message is in the garbage's copy, so the hub
finds it there and delivers it itself (see ``Controller._handle_copy``).
While it waits it passes nothing on, so the hub nudges both sides now and
then with a message of its own that completes the garbage.
"""

from __future__ import annotations

import threading

import zmq
from zmq.devices import monitored_queue

# Prefixes of the copies, unlike any identity or head frame.
IN = b"par-direct-in"  # a copy of a request, client to engine
OUT = b"par-direct-out"  # a copy of a reply (or an engine's hello), engine to client
COPIES_URL = "inproc://par-direct-copies"
NUDGE = b"par-direct-nudge"  # the identity the hub nudges the device with


class DirectDevice(threading.Thread):
    """Runs the device over two bound ROUTER sockets until the context terminates.

    It also makes the hub's sockets to it: ``copies`` and the nudgers, used by the
    hub's thread only and closed by :meth:`close_hub_side`.
    """

    def __init__(self, ctx: zmq.Context, clients: zmq.Socket, engines: zmq.Socket) -> None:
        super().__init__(name="par-direct", daemon=True)
        self.clients = clients
        self.engines = engines
        self.published = ctx.socket(zmq.PUB)
        self.published.setsockopt(zmq.SNDHWM, 0)  # the hub reads every copy: none dropped
        self.published.setsockopt(zmq.LINGER, 0)
        self.published.bind(COPIES_URL)
        self.copies = ctx.socket(zmq.SUB)
        self.copies.setsockopt(zmq.RCVHWM, 0)
        self.copies.setsockopt(zmq.SUBSCRIBE, b"")
        self.copies.connect(COPIES_URL)
        self.nudgers = []  # one on each side
        for side, sock in (("clients", clients), ("engines", engines)):
            sock.bind(f"inproc://par-direct-{side}")
            nudger = ctx.socket(zmq.DEALER)
            nudger.setsockopt(zmq.ROUTING_ID, NUDGE)
            nudger.setsockopt(zmq.LINGER, 0)
            nudger.connect(f"inproc://par-direct-{side}")
            self.nudgers.append(nudger)

    def nudge(self) -> None:
        """Complete a one-frame message the device may be waiting on the rest of (called
        by the hub's thread); otherwise the nudge goes to no one."""
        for sock in self.nudgers:
            sock.send_multipart([b"", b""], zmq.NOBLOCK)

    def close_hub_side(self) -> None:
        """Close the hub's sockets (from the hub's thread)."""
        for sock in (self.copies, *self.nudgers):
            sock.close(linger=0)

    def run(self) -> None:
        try:
            monitored_queue(self.clients, self.engines, self.published, IN, OUT)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (self.clients, self.engines, self.published):
                sock.close(linger=0)
