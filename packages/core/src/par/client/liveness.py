"""Whether the controller is alive, judged from its answers to this client's pings.

The client pings the controller every ``PING_INTERVAL`` and counts the
intervals that ended with nothing heard from it (any message proves it
alive, not only a ping's answer). The controller is lost once it has let
``controller_timeout`` worth of intervals pass in a row without a word.

Only an interval this client spent listening counts. A client that was
suspended (SIGSTOP, Ctrl-Z, a debugger's breakpoint) or whose I/O thread
could not run heard nothing because it did not listen: the answers may be
waiting unread, and a clock that ran on proves nothing about the controller.
Such an interval is skipped, and the next ping gets a fair chance.
"""

from __future__ import annotations

import math

PING_INTERVAL = 1.0  # seconds between pings
LISTENED = 2 * PING_INTERVAL  # an interval longer than this was not spent listening


class ControllerWatch:
    """Counts the pings the controller left unanswered while this client listened."""

    __slots__ = ("heard", "missed", "needed", "sent")

    def __init__(self, controller_timeout: float, now: float) -> None:
        self.needed = max(1, math.ceil(controller_timeout / PING_INTERVAL))
        self.heard = True  # set by the receiving thread for every authenticated message
        self.missed = 0
        self.sent = now  # when the last ping went out

    @property
    def next_ping(self) -> float:
        """When the next ping is due (monotonic time)."""
        return self.sent + PING_INTERVAL

    def due(self, now: float) -> bool:
        """Whether the next ping should go out now."""
        return now >= self.next_ping

    def ping(self, now: float) -> bool:
        """Judge the interval since the last ping and note a new one sent now; True if the
        controller is now lost (``needed`` intervals in a row, listened through, unanswered)."""
        if self.heard:
            self.missed = 0
        elif now - self.sent < LISTENED:
            self.missed += 1
        self.heard = False
        self.sent = now
        return self.missed >= self.needed

    @property
    def silent_for(self) -> float:
        """How long the controller has been silent, in intervals listened through (seconds)."""
        return self.missed * PING_INTERVAL
