"""What monitors hear: a notice of every finished task, one event per loop pass.

A monitor (``par monitor``, or any client that asks) is a client that also
gets every engine's streamed output and a ``tasks`` event listing the tasks
finished since the last one: their ids, engines, status and times, with an
error's type, message and traceback. Callers note a task only while
``monitors`` is not empty, so an unwatched controller pays nothing for them.
"""

from __future__ import annotations

from typing import Any

from .. import protocol
from ..messages import (
    COMPLETED,
    ENAME,
    ENGINE,
    ID,
    METHOD,
    QUEUE,
    STARTED,
    STATUS,
    STDERR,
    STDOUT,
)
from .engines import Pending
from .outbox import Outbox

OUTPUT_TAIL = 4096  # characters of a task's output a notice carries


class Notices:
    """Finished tasks noted for the monitors, sent once per loop pass."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.monitors: set[bytes] = set()  # clients watching
        self._notes: list[dict[str, Any]] = []

    def add(self, h: dict[str, Any], payload: list[Any], p: Pending | None) -> None:
        """Note a finished task: its reply's header and payload, and its request."""
        notice = {
            ID: h.get(ID),
            ENGINE: h.get(ENGINE),
            STATUS: h.get(STATUS),
            METHOD: h.get(METHOD),
            STARTED: h.get(STARTED),
            COMPLETED: h.get(COMPLETED),
            QUEUE: p.queue if p is not None else None,
            "sub": p.submitted if p is not None else None,
        }
        if h.get(STATUS) not in ("ok", None) and payload:
            try:
                content = protocol.decode(payload[0])
                notice[ENAME] = content.get("ename")
                notice["ev"] = content.get("evalue")
                notice["tb"] = content.get("traceback", "")
            except Exception:
                notice[ENAME] = h.get(ENAME)
        for key in (STDOUT, STDERR):
            if key in h:
                notice[key] = str(h[key])[-OUTPUT_TAIL:]
        self._notes.append(notice)

    def flush(self) -> None:
        """Send the monitors the tasks noted since the last flush."""
        if self._notes:
            self.outbox.event("tasks", {"tasks": self._notes}, to=self.monitors)
            self._notes = []
