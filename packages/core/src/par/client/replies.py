"""What comes back for a request: its reply, and the metadata kept per message.

A :class:`Reply` is one engine's (or the controller's) answer to one
message, as the thread receiving for the client takes it off the wire: the
header, the payload frames and the buffers, unpickled only when a value is
asked for. :class:`Metadata` is the per-message record users read
(``ar.metadata``), in ipyparallel's keys. Both are plain data: this module
imports nothing else of the client, so every part of it can use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .. import protocol, serialize
from ..errors import RemoteError, remote_error_from


class Reply:
    """An engine's (or the controller's) reply to one message; ``received``: when it came
    (seconds since the epoch; None for an error raised here)."""

    __slots__ = ("buffers", "header", "payload", "received")

    def __init__(
        self,
        header: dict[str, Any],
        payload: Sequence[Any],
        buffers: Sequence[Any],
        received: float | None = None,
    ) -> None:
        self.header = header
        self.payload = payload
        self.buffers = buffers or ()  # one object fewer held for a result without buffers
        self.received = received

    @property
    def ok(self) -> bool:
        """True if the request succeeded."""
        return self.header.get("st") == "ok"

    def value(self) -> Any:
        """The returned object (unpickled now)."""
        return serialize.loads(self.payload[0], self.buffers)

    def error(self) -> RemoteError:
        """The error this reply carries."""
        content = protocol.decode(self.payload[0]) if self.payload else {}
        return remote_error_from(content, self.header.get("e"), self.header.get("m", "apply"))


class FailedHere(Reply):
    """A reply with an error raised here (no engine answered), which may stand for many
    messages one failure fails together: its error is made once, not once for each."""

    __slots__ = ("_error",)

    def __init__(self, header: dict[str, Any], content: bytes) -> None:
        super().__init__(header, [content], ())
        self._error: RemoteError | None = None

    def error(self) -> RemoteError:
        """The error this reply carries (the same object at each call)."""
        if self._error is None:
            self._error = super().error()
        return self._error


def error_reply(msg_id: str, ename: str, evalue: str) -> Reply:
    """A reply failing ``msg_id`` with an error raised here (no engine answered)."""
    content = protocol.error_content(ename, evalue)
    return FailedHere({"t": "reply", "id": msg_id, "st": "error", "en": ename}, content)


class Metadata(dict[str, Any]):
    """Per-message metadata, readable as attributes (``md.engine_id``).

    ``positions`` (an attribute, not a key) holds, for each of ``outputs``, how much
    stdout and stderr the task had written before it, so outputs show in order.
    """

    __slots__ = ("positions",)  # no instance dict: one object fewer for the collector

    positions: list[tuple[int, int]]

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


# Every key of a message's metadata, in ipyparallel's order; the mutable ones are made anew.
_BLANK = dict.fromkeys(
    [
        "msg_id",
        "submitted",
        "started",
        "completed",
        "received",
        "engine_id",
        "engine_uuid",
        "status",
        "error",
        "stdout",
        "stderr",
        "outputs",
        "follow",
        "after",
        "label",
        "execute_input",
        "execute_result",
        "data",
    ]
)
_BLANK.update(stdout="", stderr="")


def new_metadata(msg_id: str, submitted: float, **extra: Any) -> Metadata:
    """Metadata of a freshly submitted message."""
    md = Metadata(_BLANK)  # a copy of a template: this runs for every task sent
    md["msg_id"] = msg_id
    md["submitted"] = utc(submitted)
    md["outputs"], md["follow"], md["after"], md["data"] = [], [], [], {}
    if extra:
        md.update(extra)
    md.positions = []
    return md


def record_answer(md: Metadata, reply: Reply) -> None:
    """Write into a message's metadata what its reply says: when it came, ran and
    finished, where, and how it ended."""
    h = reply.header
    if reply.received is not None:
        md["received"] = utc(reply.received)
    md["started"] = utc(h.get("ts"))
    md["completed"] = utc(h.get("tc"))
    md["engine_id"] = h.get("e", md["engine_id"])
    md["status"] = h.get("st")
    if h.get("st") != "ok" and reply.payload:
        md["error"] = reply.error()


def utc(ts: float | None) -> datetime | None:
    """A wire timestamp (seconds since the epoch) as a UTC datetime; None stays None."""
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None
