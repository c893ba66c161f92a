"""Which way a direct request goes: through the direct device, or through the hub.

A direct request reaches its engine the quickest through the controller's
direct device (see ``controller/mux.py``), which takes one message for each
engine. Through the hub it is one message, whatever the number of engines:
the hub fans it out without copying. So a large request to several engines
(a push of an array to all of them) crosses the link from the client once
through the hub, and once for each engine through the device; but a buffer
larger than the controller takes in one frame (``max_message_bytes``) goes
through the device, which takes it in chunks. The hub also coalesces a
broadcast's replies, and answers for an engine this client does not know.
Replies come either way too: an engine sends a large one through the hub,
whatever way its request came (see ``engine.app.Outbox.flush``).

The two ways do not keep order between them, and an engine must run one
client's direct requests in the order they were made. So while requests to
an engine are outstanding one way, the next goes the same way, whichever it
would rather take; an engine changes way only once it has answered
everything sent the other way.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

FANOUT_BYTES = 1 << 20  # a request this large to several engines goes through the hub


def largest(frames: Sequence[Any]) -> int:
    """Bytes in the largest of a request's frames (0 for none)."""
    most = 0
    for f in frames:  # a plain loop, bytes by len: this runs for every request sent
        size = len(f) if type(f) is bytes else memoryview(f).nbytes
        if size > most:
            most = size
    return most


class Way(NamedTuple):
    """Messages of one request that go one way."""

    engines: list[bytes] | None  # through the direct device to these engines; None: the hub
    ids: list[str]
    targets: list[int]


class _Kept:
    """The way an engine's direct requests go while some are outstanding."""

    __slots__ = ("identity", "outstanding")

    def __init__(self, identity: bytes | None) -> None:
        self.identity = identity  # the engine's name at the direct device; None: the hub
        self.outstanding = 0


class Paths:
    """Each engine's way for direct requests, kept while requests go that way."""

    def __init__(self, engines: dict[int, dict[str, Any]]) -> None:
        self.engines = engines  # the client's engines by id (their "uuid" is the device's name)
        self.lock = threading.Lock()  # requests are booked by users' threads, answered by another
        self.kept: dict[int, _Kept] = {}  # engine -> its way, while requests are outstanding
        self.engine_of: dict[str, int] = {}  # outstanding direct message -> its engine

    def book(self, ids: Sequence[str], targets: Sequence[int], hub: bool) -> list[Way]:
        """Book messages ``ids`` to ``targets`` (one each) and split them by the way they
        go, at most one :class:`Way` each way. ``hub``: the hub is the better way for this
        request."""
        engines: list[bytes] = []
        device = Way(engines, [], [])
        hubbed = Way(None, [], [])
        with self.lock:
            for mid, target in zip(ids, targets, strict=True):
                kept = self.kept.get(target)
                if kept is None:
                    kept = self.kept[target] = _Kept(self._preferred(target, hub))
                kept.outstanding += 1
                self.engine_of[mid] = target
                if kept.identity is None:
                    way = hubbed
                else:
                    way = device
                    engines.append(kept.identity)
                way.ids.append(mid)
                way.targets.append(target)
        return [way for way in (device, hubbed) if way.ids]

    def _preferred(self, target: int, hub: bool) -> bytes | None:
        engine = self.engines.get(target)
        if hub or engine is None:  # an engine not known up: the hub answers why
            return None
        return bytes.fromhex(engine["uuid"])

    def through_device(self) -> list[str]:
        """The outstanding messages that went through the direct device."""
        with self.lock:
            return [
                mid
                for mid, target in self.engine_of.items()
                if (kept := self.kept.get(target)) is not None and kept.identity is not None
            ]

    def answered(self, mid: str) -> None:
        """A message's reply came: its engine has it."""
        target = self.engine_of.pop(mid, None)
        if target is None:
            return  # not a direct request, or answered already
        with self.lock:
            kept = self.kept[target]
            kept.outstanding -= 1
            if not kept.outstanding:
                del self.kept[target]
