"""The controller's sockets, the relays that hold some of engines' connections, and the
addresses it publishes.

Five public ROUTERs::

    client  <- clients' request DEALERs; -> clients' reply DEALERs
    engine  <-> engines' work DEALERs (requests out, replies in)
    control <-> engines' control DEALERs (registration, heartbeats,
                abort / signal / stop, streamed output)
    direct, engine_direct: the direct device's (see mux.py): clients'
                direct requests to engines and the replies back, routed
                in C; the hub reads copies (``copies``, a PULL)

The hub binds the first two; the control relay holds ``control`` and the
direct relay the device's two, each in a process of its own that passes their
traffic to the hub over ``ipc://`` (see relays.py): the hub's ``control`` is a
DEALER that reads and sends ``[engine identity, *message]`` as from a ROUTER.
A monitor of the engine socket says when an engine's connection drops. A
restored controller binds the ports of the one it replaces, so that engines
and clients reconnect by themselves.
"""

from __future__ import annotations

import contextlib
import os

import zmq

from ..curve import make_client
from . import relays
from .mux import SYNC


class Sockets:
    """The controller's sockets and its relays."""

    def __init__(
        self,
        ip: str,
        curve_keys: tuple[str, str] | None,
        previous: dict[str, str],
        max_message_bytes: int,
        client_hwm: int,
        key: bytes,
        every: float,
        nudge_every: float,
    ) -> None:
        curve_secret = curve_keys[1] if curve_keys else None
        self.ctx = zmq.Context()
        self.folder = relays.ipc_folder()
        # The direct device's copies of what it passed: bound before its relay pushes here.
        self.copies = self.ctx.socket(zmq.PULL)
        self.copies.setsockopt(zmq.RCVHWM, 0)
        self.copies.setsockopt(zmq.LINGER, 0)
        self.copies.bind(relays.ipc_url(self.folder, "copies"))
        self.settings = {  # the relays', kept to start one again (restart)
            "ip": ip,
            "previous": previous,
            "curve_secret": curve_secret,
            "max_message_bytes": max_message_bytes,
            "folder": self.folder,
            "key": key.hex(),
            "every": every,  # the heartbeats' batches
            "nudge_every": nudge_every,  # the direct device's nudges
        }
        self.relays = relays.start(self.settings)
        # clients' requests in, everything they get out
        self.client = relays.router(self.ctx, curve_secret, max_message_bytes)
        # A client that does not read fills a bounded queue, and a full one is an error at
        # once rather than a silent drop (see delivery.py).
        self.client.setsockopt(zmq.SNDHWM, client_hwm)
        self.client.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # engines' work: requests out, replies in
        self.engine = relays.router(self.ctx, curve_secret, max_message_bytes)
        self.monitor = self.engine.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.control = self.ctx.socket(zmq.DEALER)  # engines' control, through its relay
        for opt, value in ((zmq.SNDHWM, 0), (zmq.RCVHWM, 0), (zmq.LINGER, 200)):
            self.control.setsockopt(opt, value)
        # The hub's way into the direct device, for Controller.sync_copies (through the
        # device's client side, which takes Curve if its public side does).
        self.sync = self.ctx.socket(zmq.DEALER)
        self.sync.setsockopt(zmq.ROUTING_ID, SYNC)
        self.sync.setsockopt(zmq.LINGER, 0)
        if curve_keys:
            make_client(self.sync, curve_keys[0])
        try:
            self.urls = {
                name: relays.bind(sock, ip, previous.get(f"{name}_url"))
                for name, sock in (("client", self.client), ("engine", self.engine))
            }
            for relay in self.relays.values():
                self.urls.update(relay.urls())
        except OSError:
            self.close()
            raise
        self.control.connect(relays.ipc_url(self.folder, "control"))
        self.sync.connect(relays.ipc_url(self.folder, "direct-clients"))

    def restart(self, kind: str) -> None:
        """Start relay ``kind`` again, on the addresses it had (engines and clients reconnect
        by themselves), after its process ended. OSError if it cannot bind them again. A
        relay that ended by itself removed the ipc folder on its way out: it is made again,
        with the hub's endpoint in it."""
        if not os.path.isdir(self.folder):
            os.makedirs(self.folder, mode=0o700)
            url = relays.ipc_url(self.folder, "copies")
            with contextlib.suppress(zmq.ZMQError):  # its file went with the folder
                self.copies.unbind(url)
            self.copies.bind(url)
        previous = {f"{name}_url": url for name, url in self.urls.items()}
        relay = relays.Relay(kind, {**self.settings, "previous": previous})
        self.relays[kind].close()  # reaps the old process
        self.relays[kind] = relay
        relay.urls()

    def close(self) -> None:
        """Close the hub's sockets (what they hold for the relays goes first), then the
        relays, which end their devices."""
        self.engine.disable_monitor()
        for sock in (self.client, self.engine, self.control, self.monitor, self.copies, self.sync):
            sock.close(linger=200)
        self.ctx.term()
        for relay in self.relays.values():
            relay.close()
        relays.remove_folder(self.folder)
