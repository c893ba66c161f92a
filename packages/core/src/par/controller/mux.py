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
    """Runs the device over two bound ROUTER sockets until the context terminates."""

    def __init__(self, ctx: zmq.Context, clients: zmq.Socket, engines: zmq.Socket) -> None:
        super().__init__(name="par-direct", daemon=True)
        self.clients = clients
        self.engines = engines
        self.copies = ctx.socket(zmq.PUB)
        self.copies.setsockopt(zmq.SNDHWM, 0)  # the hub reads every copy: none may be dropped
        self.copies.setsockopt(zmq.LINGER, 0)
        self.copies.bind(COPIES_URL)
        self.nudgers = []  # the hub's, one on each side
        for side, sock in (("clients", clients), ("engines", engines)):
            sock.bind(f"inproc://par-direct-{side}")
            nudger = ctx.socket(zmq.DEALER)
            nudger.setsockopt(zmq.ROUTING_ID, NUDGE)
            nudger.setsockopt(zmq.LINGER, 0)
            nudger.connect(f"inproc://par-direct-{side}")
            self.nudgers.append(nudger)

    def subscribe(self, ctx: zmq.Context) -> zmq.Socket:
        """The hub's socket for the copies (call before :meth:`start`)."""
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(COPIES_URL)
        return sock

    def nudge(self) -> None:
        """Complete a one-frame message the device may be waiting on the rest of (called
        by the hub's thread); otherwise the nudge goes to no one."""
        for sock in self.nudgers:
            sock.send_multipart([b"", b""], zmq.NOBLOCK)

    def run(self) -> None:
        try:
            monitored_queue(self.clients, self.engines, self.copies, IN, OUT)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (self.clients, self.engines, self.copies):
                sock.close(linger=0)
