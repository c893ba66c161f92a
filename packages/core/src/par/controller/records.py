"""Task records kept by the hub, bounded in count and in bytes.

When a bound is reached the oldest records are culled, so a controller
running millions of tasks keeps a flat memory footprint.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass
class Record:
    """What the hub remembers of one task."""

    msg_id: str
    client: str
    queue: str
    method: str
    submitted: float
    engine_id: int | None = None
    started: float | None = None
    completed: float | None = None
    status: str = "pending"
    ename: str | None = None
    label: str | None = None
    result: list[Any] | None = None  # reply frames, kept while within the byte bound
    nbytes: int = 0

    def describe(self) -> dict[str, Any]:
        """A plain dict (without result frames) for queries."""
        return {
            "msg_id": self.msg_id,
            "client": self.client,
            "queue": self.queue,
            "method": self.method,
            "submitted": self.submitted,
            "engine_id": self.engine_id,
            "started": self.started,
            "completed": self.completed,
            "status": self.status,
            "ename": self.ename,
            "label": self.label,
        }


def _nbytes(frames: list[Any]) -> int:
    return sum(len(getattr(f, "buffer", f)) for f in frames)


class RecordStore:
    """An insertion-ordered, bounded store of task records."""

    def __init__(self, max_records: int = 10_000, max_bytes: int = 256 << 20) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.records: OrderedDict[str, Record] = OrderedDict()
        self.nbytes = 0
        self.culled = 0

    def add(self, record: Record) -> None:
        """Add a record, culling the oldest if over the count bound."""
        self.records[record.msg_id] = record
        while len(self.records) > self.max_records:
            self._cull_one()

    def finish(self, msg_id: str, header: dict[str, Any], frames: list[Any] | None) -> None:
        """Fill in a record from its reply header, keeping result frames within bounds."""
        rec = self.records.get(msg_id)
        if rec is None:
            return
        rec.engine_id = header.get("e", rec.engine_id)
        rec.started = header.get("ts")
        rec.completed = header.get("tc")
        rec.status = header.get("st", "ok")
        rec.ename = header.get("en")
        if frames is not None and self.max_bytes > 0:
            size = _nbytes(frames)
            if size <= self.max_bytes:
                rec.result, rec.nbytes = frames, size
                self.nbytes += size
                while self.nbytes > self.max_bytes:
                    self._cull_one()

    def _cull_one(self) -> None:
        _, rec = self.records.popitem(last=False)
        self.nbytes -= rec.nbytes
        self.culled += 1

    def remove(self, msg_id: str) -> None:
        """Forget one record."""
        rec = self.records.pop(msg_id, None)
        if rec is not None:
            self.nbytes -= rec.nbytes

    def get(self, msg_id: str) -> Record | None:
        """The record of a task, if still kept."""
        return self.records.get(msg_id)

    def __len__(self) -> int:
        return len(self.records)
