"""The client's request socket, shared by the user's threads and the I/O thread.

A send releases Python's GIL, and while replies are coming in every release
hands the GIL to the I/O thread: a loop of ``apply_async`` calls then spends
most of its time waiting to get it back. So while other requests are
outstanding and replies are coming in (a single task's request; a map's
batch only while the I/O thread is busy with replies), a new request waits
here; the I/O thread, which then wakes at least every millisecond, sends
what waits once the first has waited ``HOLD_FOR`` (``BATCH`` waiting requests
are sent by the thread that adds the last), so a burst of ``apply_async``
calls travels in messages of many tasks. Load-balanced tasks of one function with the
same flags are merged into one message, as ``map`` sends them. A request
made while nothing is outstanding (a blocking call's) is sent at once, so a
round trip pays no wait. Everything is sent in the order it was made.

A direct request that goes through the controller's direct device (see
``controller/mux.py`` and ``paths.py``) is sent once for each engine it names,
on its own socket, each message naming only its own engine and task (so that
a request to 10,000 engines is not 10,000 headers of 10,000 ids); everything
else goes to the controller.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import zmq

from ..messages import IDS, TARGETS, joinable, merge_tasks
from ..protocol import Session, send_frames

BATCH = 128  # held requests sent as soon as this many wait
HOLD_FOR = 0.0005  # seconds the I/O thread lets held requests gather company while active
# header, payload, buffers, and the engines a direct request goes to through the direct
# device (None: to the controller)
Request = tuple[dict[str, Any], list[Any], list[Any], list[bytes] | None]


class RequestSender:
    """Sends requests, holding them while the I/O thread is busy."""

    def __init__(self, sock: zmq.Socket, direct: zmq.Socket, session: Session) -> None:
        self.sock = sock  # to the controller
        self.direct = direct  # to the direct device
        self.session = session
        self.lock = threading.Lock()
        self.waiting: list[Request] = []
        self.io_busy = False  # the receiving thread is handling replies
        self.io_active = False  # the I/O thread handled some lately: it wakes every millisecond
        self.held_since = 0.0  # when the first of the waiting requests was held
        self.sent_at = 0.0  # when a request was last made (the I/O thread keeps awake)

    def send(self, request: Request, in_flight: bool) -> None:
        """Send a request now, or hold it for the I/O thread while other requests are
        ``in_flight`` (a map's batches, already large, go at once unless that thread is busy)."""
        with self.lock:
            self.sent_at = time.monotonic()
            # A request made while nothing else is outstanding (a blocking call's) goes at
            # once, even while the I/O thread finishes handling the reply before it; so does
            # one made while replies are not coming in (a long task running, say).
            header, _, _, _ = request
            single = len(header["ids"]) == 1
            if self.waiting or (in_flight and (self.io_busy or (single and self.io_active))):
                if not self.waiting:
                    self.held_since = time.monotonic()
                self.waiting.append(request)
                if len(self.waiting) >= BATCH:
                    self._flush()
            else:
                self._send(request)

    def send_built(
        self, messages: list[list[Any]], direct: bool = False, track: bool = False
    ) -> list[zmq.MessageTracker]:
        """Send a built request now (after what is waiting; several messages: in chunks, or
        one for each engine), to the controller or (``direct``) through the direct device;
        its trackers if ``track``."""
        if track:
            messages = [[zmq.Frame(f, track=True) for f in m] for m in messages]
        with self.lock:
            self._flush()
            self._emit(messages, direct)
        return [f.tracker for m in messages for f in m] if track else []

    def build(
        self,
        header: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
        via: list[bytes] | None,
    ) -> list[list[Any]]:
        """The messages of a request: one to the controller; through the direct device
        (``via``), for each engine its own, with that engine's identity first and a header
        naming its task alone (``ids``, ``tg``), large buffers in chunks (see
        ``protocol.serialize_parts``)."""
        if via is None:
            return [self.session.serialize(header, payload, buffers)]
        if len(via) == 1:
            parts = [self.session.serialize_parts(header, payload, buffers)]
        else:  # a header naming every engine would grow with the engines, for each of them
            parts = [
                self.session.serialize_parts({**header, IDS: [mid], TARGETS: [t]}, payload, buffers)
                for mid, t in zip(header[IDS], header[TARGETS], strict=True)
            ]
        return [
            [engine, *frames]
            for engine, messages in zip(via, parts, strict=True)
            for frames in messages
        ]

    def _send(self, request: Request) -> None:
        header, payload, buffers, via = request
        self._emit(self.build(header, payload, buffers, via), via is not None)

    def _emit(self, messages: list[list[Any]], direct: bool) -> None:
        sock = self.direct if direct else self.sock
        for frames in messages:
            send_frames(sock, frames)

    def idle(self, active: bool) -> None:
        """Called by the receiving thread (the I/O thread or a waiting user's thread) before
        it waits: send what waits (while ``active``, once the first has waited ``HOLD_FOR``);
        while ``active``, it wakes every millisecond, so requests may wait for it."""
        with self.lock:
            if not active or time.monotonic() - self.held_since >= HOLD_FOR:
                self._flush()
            self.io_busy = False
            self.io_active = active

    def _flush(self) -> None:
        waiting, self.waiting = self.waiting, []
        group: list[Request] = []
        last: dict[str, Any] = {}  # the header of the group's last request
        for request in waiting:
            header, _, _, _ = request
            if group and not joinable(last, header):
                self._send_group(group)
                group = []
            group.append(request)
            last = header
        if group:
            self._send_group(group)

    def _send_group(self, group: list[Request]) -> None:
        """Send requests, several load-balanced ones of one function and flags as one batch."""
        if len(group) == 1:
            self._send(group[0])
            return
        header, payload, buffers = merge_tasks([(h, p, b) for h, p, b, _ in group])
        self._send((header, payload, buffers, None))
