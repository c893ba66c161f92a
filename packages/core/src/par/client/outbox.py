"""The client's request socket, shared by the user's threads and the I/O thread.

A send releases Python's GIL once per frame. While the I/O thread is busy
handling replies, every such release hands it the GIL, and a loop of
``apply_async`` calls then spends most of its time waiting to get it back.
So while the I/O thread is busy, requests wait here instead, and the I/O
thread sends them when it is done: load-balanced tasks of one function
with the same flags merged into one message, as ``map`` sends them.
Everything else is sent at once, after whatever is waiting, so the
controller always sees requests in the order they were made.
"""

from __future__ import annotations

import threading
from typing import Any

import zmq

from ..protocol import Session, send_frames

Request = tuple[dict[str, Any], list[Any], list[Any]]  # header, payload, buffers
_PER_BATCH = ("ids", "ts", "nb")  # the header keys that differ between tasks of one batch


def _joinable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two load-balanced task requests can travel as one message."""
    if a.get("q") != "t" or b.get("q") != "t" or a.keys() != b.keys():
        return False
    return all(a[k] == b[k] for k in a if k not in _PER_BATCH)


def _counts(h: dict[str, Any], buffers: list[Any]) -> list[int]:
    """Buffers per task of a request."""
    return h.get("nb") or [len(buffers)] + [0] * (len(h["ids"]) - 1)


def _join(requests: list[Request]) -> Request:
    """Merge task requests of one function and flags: the function once, then each
    task's arguments."""
    if len(requests) == 1:
        return requests[0]
    header = dict(requests[0][0])
    header["ids"] = [mid for h, _, _ in requests for mid in h["ids"]]
    payload = [requests[0][1][0], *(f for _, p, _ in requests for f in p[1:])]
    buffers = [b for _, _, bufs in requests for b in bufs]
    header.pop("nb", None)
    if buffers:
        header["nb"] = [n for h, _, bufs in requests for n in _counts(h, bufs)]
    return header, payload, buffers


class RequestSender:
    """Sends requests on one socket, holding them while the I/O thread is busy."""

    def __init__(self, sock: zmq.Socket, session: Session) -> None:
        self.sock = sock
        self.session = session
        self.lock = threading.Lock()
        self.waiting: list[Request] = []
        self.io_busy = False

    def send(self, request: Request) -> None:
        """Send a request now, or hold it for the I/O thread if that is busy."""
        with self.lock:
            if self.io_busy or self.waiting:
                self.waiting.append(request)
                return
            send_frames(self.sock, self.session.serialize(*request))

    def send_frames(self, frames: list[Any], track: bool = False) -> Any:
        """Send a built message now (after what is waiting); the tracker if ``track``."""
        with self.lock:
            self._flush()
            if track:
                return self.sock.send_multipart(frames, copy=False, track=True)
            send_frames(self.sock, frames)
            return None

    def idle(self) -> None:
        """Called by the I/O thread before it waits: send what waits, stop holding."""
        with self.lock:
            self._flush()
            self.io_busy = False

    def _flush(self) -> None:
        waiting, self.waiting = self.waiting, []
        group: list[Request] = []
        for request in waiting:
            if group and not _joinable(group[-1][0], request[0]):
                send_frames(self.sock, self.session.serialize(*_join(group)))
                group = []
            group.append(request)
        if group:
            send_frames(self.sock, self.session.serialize(*_join(group)))
