"""When an engine's direct connection came back after it dropped.

ZeroMQ mends a dropped connection by itself and says nothing. What was on
the wire when it dropped is gone, and so is what the direct device routed to
the engine while it was away (a ROUTER drops a message for a peer it does not
have): a client waiting on it would wait for ever. So the engine watches its
direct socket's events (:class:`Reconnects`), and once the connection is back
it says hello again through the device, naming the direct requests it holds
(``HELD``); the controller fails the others still open on it, lost on the way
there or back (``EngineControl.direct_reconnected``).

The hello goes after everything before it: the requests that came meanwhile
are read first (they count as held), the replies finished are sent (their
copies reach the controller first), and a task running when the connection
dropped finishes before the main loop reads the event. (A client, whose
replies the device may drop the same way, asks again for those that
finished: ``IOThread._ask_again`` in par.client.io.)
"""

from __future__ import annotations

from typing import Any

import zmq
from zmq.utils.monitor import parse_monitor_message

EVENTS = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED


class Reconnects:
    """The events of the direct socket: :attr:`back` is true once it came back after a drop
    (until the engine, having said hello again, clears it)."""

    def __init__(self, sock: zmq.Socket) -> None:
        self.sock = sock
        self.events = sock.get_monitor_socket(EVENTS)
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
