"""Knowing when a connection came back after it dropped.

ZeroMQ reconnects a dropped connection by itself and says nothing. What was
on the wire when it dropped is gone, and so is what a ROUTER routed to the
peer while it was away (a ROUTER drops a message for a peer it does not
have): a client waiting on it would wait for ever. So the two ends that can
lose so watch their socket's events (:class:`Reconnects`), and once a
connection is back they make up for it:

- **An engine's direct connection** (``par.engine.app``): the engine says
  hello again through the direct device, naming the direct requests it holds
  (``HELD``), and the controller fails the others still open on it, lost on
  the way there or back (``EngineControl.direct_reconnected``). The hello
  goes after everything before it: the requests that came meanwhile are read
  first (they count as held), the replies finished are sent (their copies
  reach the controller first), and a task running when the connection
  dropped finishes before the main loop reads the event.
- **A client's reply socket** (``par.client.io``): the client asks the
  controller for the replies of its outstanding requests that finished
  (``resend``, ``finished``). The controller reads the direct device's copies
  first, so a reply the device routed while the client was away is among
  them; a reply the client has already is ignored.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import zmq
from zmq.utils.monitor import parse_monitor_message

EVENTS = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED


class Reconnects:
    """The events of a socket: :attr:`back` is true once a connection of it came back after
    a drop (until its owner, having made up for it, clears it)."""

    def __init__(self, sock: zmq.Socket) -> None:
        self.sock = sock
        # An address of its own: a monitor's default one (by descriptor) stays taken for a
        # while after an earlier monitor of the socket closed (the client watched its
        # first handshakes with one).
        self.events = sock.get_monitor_socket(EVENTS, f"inproc://par-reconnects-{uuid4().hex}")
        self.dropped = False
        self.back = False

    def on_event(self, frames: list[Any]) -> None:
        """Handle one event from :attr:`events`."""
        event = parse_monitor_message([bytes(f.buffer) for f in frames])["event"]
        if event == zmq.EVENT_DISCONNECTED:
            self.dropped = True
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED and self.dropped:
            self.dropped = False
            self.back = True

    def close(self) -> None:
        """Stop watching (before the socket closes)."""
        self.sock.disable_monitor()
        self.events.close(linger=0)
