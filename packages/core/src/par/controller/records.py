"""Task records kept by the hub, bounded in count and in bytes.

When a bound is reached the oldest records are culled, so a controller
running millions of tasks keeps a flat memory footprint.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..protocol import decode as msgpack_decode
from ..protocol import detach
from ..protocol import encode as msgpack_encode


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
    # The reply, kept while within the byte bound: its encoded header, payload, buffers.
    result: list[Any] | None = None
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
        """Fill in a record from its reply: header, and payload and buffer frames (kept
        within bounds; the header's ``b`` says how many are buffers)."""
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
                rec.result, rec.nbytes = [msgpack_encode(header), *detach(frames)], size
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

    def all(self) -> Iterator[Record]:
        """Every record kept, oldest first."""
        return iter(list(self.records.values()))

    def flush(self) -> None:
        """Write what changed to durable storage (nothing to do in memory)."""

    def close(self) -> None:
        """Release storage."""

    def __len__(self) -> int:
        return len(self.records)


_COLUMNS = (
    "msg_id",
    "client",
    "queue",
    "method",
    "submitted",
    "engine_id",
    "started",
    "completed",
    "status",
    "ename",
    "label",
)


class SQLiteRecordStore(RecordStore):
    """Records in memory (the bounded working set) and in a SQLite file (durable).

    Rows are written in one transaction per controller loop pass (:meth:`flush`),
    so the hot path pays no disk round trip per task; a controller killed outright
    loses at most the last pass. A restored controller finds every finished
    result, up to ``max_rows`` (oldest deleted first).
    """

    def __init__(
        self,
        path: str,
        max_records: int = 10_000,
        max_bytes: int = 256 << 20,
        max_rows: int = 1_000_000,
    ) -> None:
        super().__init__(max_records, max_bytes)
        self.path = path
        self.max_rows = max_rows
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join(f"{c}" for c in _COLUMNS[1:])
        self.db.execute(
            f"CREATE TABLE IF NOT EXISTS records (msg_id TEXT PRIMARY KEY, {cols}, result BLOB)"
        )
        self._dirty: dict[str, Record] = {}
        self._deleted: set[str] = set()

    def add(self, record: Record) -> None:
        """Add a record (written at the next flush)."""
        super().add(record)
        self._dirty[record.msg_id] = record

    def finish(self, msg_id: str, header: dict[str, Any], frames: list[Any] | None) -> None:
        """Fill in a record from its reply (written at the next flush)."""
        super().finish(msg_id, header, frames)
        rec = self.records.get(msg_id)
        if rec is not None:
            self._dirty[msg_id] = rec

    def remove(self, msg_id: str) -> None:
        """Forget a record here and on disk."""
        super().remove(msg_id)
        self._dirty.pop(msg_id, None)
        self._deleted.add(msg_id)

    def get(self, msg_id: str) -> Record | None:
        """A record from memory, else from disk (with its result)."""
        rec = super().get(msg_id)
        if rec is not None or msg_id in self._deleted:
            return rec
        row = self.db.execute(
            f"SELECT {', '.join(_COLUMNS)}, result FROM records WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return None if row is None else _from_row(row)

    def all(self) -> Iterator[Record]:
        """Every record on disk (after a flush), oldest first."""
        self.flush()
        rows = self.db.execute(
            f"SELECT {', '.join(_COLUMNS)}, NULL FROM records ORDER BY rowid"
        ).fetchall()
        return (_from_row(r) for r in rows)

    def flush(self) -> None:
        """Write new and changed records in one transaction; keep at most ``max_rows``."""
        if not self._dirty and not self._deleted:
            return
        rows = [(*(getattr(r, c) for c in _COLUMNS), _pack(r.result)) for r in self._dirty.values()]
        marks = ", ".join("?" * (len(_COLUMNS) + 1))
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(f"INSERT OR REPLACE INTO records VALUES ({marks})", rows)
            self.db.executemany(
                "DELETE FROM records WHERE msg_id = ?", [(m,) for m in self._deleted]
            )
            self.db.execute(
                "DELETE FROM records WHERE rowid <= (SELECT MAX(rowid) FROM records) - ?",
                (self.max_rows,),
            )
        self._dirty.clear()
        self._deleted.clear()

    def close(self) -> None:
        """Flush and close the database."""
        self.flush()
        self.db.close()

    def __len__(self) -> int:
        self.flush()
        return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])


def _pack(frames: list[Any] | None) -> bytes | None:
    if frames is None:
        return None
    return msgpack_encode([bytes(getattr(f, "buffer", f)) for f in frames])


def _from_row(row: tuple[Any, ...]) -> Record:
    values = dict(zip(_COLUMNS, row[:-1], strict=True))
    rec = Record(**values)
    if row[-1] is not None:
        rec.result = list(msgpack_decode(row[-1]))
    return rec
