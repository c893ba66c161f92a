"""Task records kept by the hub, bounded in count and in bytes.

A record holds what ipyparallel's TaskRecord holds: the request (its header
and frames, so that the task can be resubmitted), the reply (so that any
client can fetch the result), times, engines, output and label. Both are
the frames the controller already received, kept by reference; nothing is
unpickled, and the keys that need a payload read (``content``, ``error``...)
decode only the msgpack or text frames par itself writes.

When a bound is reached the oldest records are culled, so a controller
running millions of tasks keeps a flat memory footprint. The byte bound
counts requests, replies and output; frames several records share (a
batch's function, a request sent to several engines) are counted once.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

from ..messages import MESSAGE_KEYS
from ..paths import create_private_file
from ..protocol import Chunks, buffer_of, detach
from ..protocol import decode as msgpack_decode
from ..protocol import encode as msgpack_encode
from ..protocol import nbytes as _nbytes

_OUTPUT_KEYS = ("o", "r")

log = logging.getLogger("par.controller")

# Seconds a write waits for another process's lock on the database before the loop goes
# on (and tries again next pass): the loop must keep serving, heartbeats above all.
WRITE_WAIT = 0.1
# Seconds between tries while the lock lasts: each try holds the loop up to WRITE_WAIT.
LOCKED_RETRY = 0.25
# Seconds the last write, as the controller stops, waits for such a lock.
LAST_WRITE_WAIT = 30.0
# Output of tasks with no record yet, kept for when it comes: a direct request's copy
# reaches the hub from the direct relay, its output from the control relay, in either
# order. A bound in tasks and in characters, the oldest dropped first.
EARLY_TASKS = 1024
EARLY_CHARS = 4 << 20


@dataclass(slots=True)
class Shared:
    """Request frames several records hold, charged to the store once while any holds them."""

    nbytes: int
    holders: int = 0

    @classmethod
    def of(cls, frames: Iterable[Any]) -> Shared:
        """The charge for ``frames``."""
        return cls(_nbytes(frames))


@dataclass(slots=True)
class Record:
    """What the hub remembers of one task."""

    msg_id: str
    client: str
    queue: str  # par.messages.RECORD_QUEUE's: "mux" (direct) or "task" (load-balanced)
    method: str
    submitted: float
    engine_id: int | None = None
    started: float | None = None
    completed: float | None = None
    status: str = "pending"
    ename: str | None = None
    label: str | None = None
    engine_uuid: bytes | None = None
    resubmitted: str | None = None  # the message id it was last resubmitted as
    stdout: str = ""
    stderr: str = ""
    # The request: its header (shared by the tasks of its message) and, while within the
    # byte bound, this task's payload and buffer frames.
    header: dict[str, Any] | None = None
    payload: list[Any] | None = None
    buffers: list[Any] | None = None
    shared: Shared | None = None  # the part of the request frames other records hold too
    # The reply, kept while within the byte bound: its encoded header, payload, buffers.
    result: list[Any] | None = None
    nbytes: int = 0  # bytes charged to this record alone

    def value(self, key: str) -> Any:
        """The record's value of one key (see :data:`KEYS`)."""
        return _FIELDS[key](self)

    def fields(self, keys: Iterable[str]) -> dict[str, Any]:
        """The record's values of ``keys``."""
        return {k: _FIELDS[k](self) for k in keys}

    def describe(self) -> dict[str, Any]:
        """A plain dict of the keys that need no frame read."""
        return self.fields(SCALAR_KEYS)

    def reply(self) -> tuple[dict[str, Any], list[Any], list[Any]] | None:
        """The kept reply as (header, payload, buffers), its header carrying all the output."""
        if self.result is None:
            return None
        header = msgpack_decode(self.result[0])
        frames = self.result[1:]
        split = len(frames) - int(header.get("b", 0))
        header.pop("ns", None)  # the output is all here: no streamed chunks follow
        if self.stdout:
            header["o"] = self.stdout
        if self.stderr:
            header["r"] = self.stderr
        return header, frames[:split], frames[split:]

    def request_header(self) -> dict[str, Any] | None:
        """The request's header as one task's (without its message's routing)."""
        if self.header is None:
            return None
        h = {k: v for k, v in self.header.items() if k not in MESSAGE_KEYS}
        h.update(msg_id=self.msg_id, msg_type=f"{self.method}_request")
        return h


def split_output(header: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """A reply header without its output, and the stdout and stderr it carried."""
    out, err = header.get("o"), header.get("r")
    if not (out or err):
        return header, "", ""
    rest = {k: v for k, v in header.items() if k not in _OUTPUT_KEYS}
    return rest, str(out or ""), str(err or "")


def _code(rec: Record) -> str | None:
    if rec.method != "execute" or not rec.payload:
        return None
    return bytes(buffer_of(rec.payload[0])).decode()


def _content(rec: Record) -> dict[str, Any] | None:
    if rec.payload is None:
        return None
    return {"code": _code(rec)} if rec.method == "execute" else {}


def _error(rec: Record) -> dict[str, Any] | None:
    if rec.status in ("ok", "pending") or rec.result is None or len(rec.result) < 2:
        return None
    content = msgpack_decode(rec.result[1])  # the error a reply carries: msgpack, never a pickle
    return content if isinstance(content, dict) else None


def _result_header(rec: Record) -> dict[str, Any] | None:
    reply = rec.reply()
    if reply is None:
        return None
    return {**reply[0], "msg_type": f"{rec.method}_reply"}


def _result_content(rec: Record) -> dict[str, Any] | None:
    if rec.status == "pending":
        return None
    named = {"ename": rec.ename} if rec.ename else {}
    return {"status": rec.status, **named, **(_error(rec) or {})}


def request_frames(rec: Record) -> list[Any]:
    """An apply request's payload and buffer frames (``buffers``; an execute's code is in
    ``content``)."""
    if rec.method == "execute" or rec.payload is None:
        return []
    return _whole([*rec.payload, *(rec.buffers or [])])


def result_frames(rec: Record) -> list[Any]:
    """A successful reply's payload and buffer frames (``result_buffers``)."""
    if rec.status != "ok" or rec.result is None:
        return []
    return _whole(rec.result[1:])


def _whole(frames: list[Any]) -> list[Any]:
    """Frames to answer a query with (they are signed): kept chunks joined."""
    return [bytes(f) if type(f) is Chunks else f for f in frames]


def _time(name: str) -> Callable[[Record], float | None]:
    """A time field at the microsecond resolution of the datetimes clients read, so that a
    query compares exactly the times its answer shows (``$lt`` a record's own time is
    false for that record)."""
    get = attrgetter(name)

    def read(rec: Record) -> float | None:
        t = get(rec)
        return None if t is None else round(t, 6)

    return read


_FIELDS: dict[str, Callable[[Record], Any]] = {  # ipyparallel's TaskRecord keys, then par's
    "msg_id": attrgetter("msg_id"),
    "header": Record.request_header,
    "content": _content,
    "buffers": request_frames,
    "submitted": _time("submitted"),
    "client_uuid": attrgetter("client"),
    "engine_uuid": lambda r: r.engine_uuid.hex() if r.engine_uuid is not None else None,
    "started": _time("started"),
    "completed": _time("completed"),
    "resubmitted": attrgetter("resubmitted"),
    "result_header": _result_header,
    "result_content": _result_content,
    "result_buffers": result_frames,
    "queue": attrgetter("queue"),
    "execute_input": _code,
    "execute_result": lambda r: None,  # par's execute displays nothing (ipyparallel's silent=True)
    "error": _error,
    "stdout": attrgetter("stdout"),
    "stderr": attrgetter("stderr"),
    "label": attrgetter("label"),
    "engine_id": attrgetter("engine_id"),
    "status": attrgetter("status"),
    "ename": attrgetter("ename"),
    "method": attrgetter("method"),
    "client": attrgetter("client"),
}
KEYS = tuple(_FIELDS)
# Keys answered with frames, not values: only sent when asked for (as in ipyparallel).
FRAME_KEYS = frozenset(("buffers", "result_buffers"))
# Keys read from the request or reply (a SQLite store loads those only when needed).
BLOB_KEYS = FRAME_KEYS | {
    "header",
    "content",
    "execute_input",
    "result_header",
    "result_content",
    "error",
}
SCALAR_KEYS = tuple(k for k in KEYS if k not in BLOB_KEYS)
DEFAULT_KEYS = tuple(k for k in KEYS if k not in FRAME_KEYS)


class RecordStore:
    """An insertion-ordered, bounded store of task records."""

    durable = False  # whether records outlive the controller (then written before replies go)

    def __init__(self, max_records: int = 10_000, max_bytes: int = 256 << 20) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.records: OrderedDict[str, Record] = OrderedDict()
        self.nbytes = 0
        self.culled = 0
        # Replies whose frames are not stored yet: the controller stores them at the end of
        # its loop pass, after sending the replies on (see _settle).
        self._unsettled: list[tuple[Record, dict[str, Any], list[Any]]] = []
        self._early: OrderedDict[str, tuple[str, str]] = OrderedDict()  # see EARLY_TASKS
        self._early_chars = 0

    def add(self, record: Record) -> None:
        """Add a record (keeping its request frames if they fit, and output that came
        before it), culling the oldest if over a bound."""
        self._settle()
        if record.msg_id in self.records:
            self.remove(record.msg_id)
        if record.payload is not None:
            self._charge_request(record)
        self.records[record.msg_id] = record
        early = self._early.pop(record.msg_id, None)
        if early is not None:
            self._early_chars -= len(early[0]) + len(early[1])
            self._add_output(record, *early)
        self._enforce()

    def _charge_request(self, rec: Record) -> None:
        shared = rec.shared
        own = _nbytes(rec.payload or ())
        if rec.buffers:
            own += _nbytes(rec.buffers)
        new = 0
        if shared is not None:
            own -= shared.nbytes
            new = shared.nbytes if shared.holders == 0 else 0
        if own + new > self.max_bytes:  # too large to keep: the record stays, without it
            rec.payload = rec.buffers = rec.shared = None
            return
        rec.nbytes += own
        self.nbytes += own + new
        if shared is not None:
            shared.holders += 1

    def assign(self, msg_id: str, engine_id: int, engine_uuid: bytes) -> None:
        """Note the engine a load-balanced task was sent to."""
        rec = self.records.get(msg_id)
        if rec is not None:
            rec.engine_id, rec.engine_uuid = engine_id, engine_uuid

    def finish(self, msg_id: str, header: dict[str, Any], frames: list[Any] | None) -> None:
        """Fill in a record from its reply: header, output, and payload and buffer frames
        (kept within bounds; the header's ``b`` says how many are buffers). The status is
        set now; the frames are stored at the next read or :meth:`flush`."""
        rec = self.records.get(msg_id)
        if rec is None:
            return
        rec.engine_id = header.get("e", rec.engine_id)
        rec.started = header.get("ts")
        rec.completed = header.get("tc")
        rec.status = header.get("st", "ok")
        rec.ename = header.get("en")
        header, out, err = split_output(header)
        if out or err:  # kept once, in the record (streamed output was added there already)
            self._add_output(rec, out, err)
            self._enforce()
        if frames is not None:
            self._unsettled.append((rec, header, frames))

    def _settle(self) -> None:
        """Store the frames of the replies finished since the last call."""
        if not self._unsettled:
            return
        unsettled, self._unsettled = self._unsettled, []
        for rec, header, frames in unsettled:
            if self.records.get(rec.msg_id) is not rec:  # culled or removed meanwhile
                self._not_kept(rec, header, frames)
                continue
            raw = msgpack_encode(header)
            size = len(raw) + _nbytes(frames)
            if size > self.max_bytes:
                self._not_kept(rec, header, frames)
                continue
            if rec.result is not None:
                old = _nbytes(rec.result)
                rec.nbytes -= old
                self.nbytes -= old
            rec.result = [raw, *detach(frames)]
            rec.nbytes += size
            self.nbytes += size
        self._enforce()

    def _not_kept(self, rec: Record, header: dict[str, Any], frames: list[Any]) -> None:
        """A reply memory does not keep (its record was culled, or it is too large): in
        memory alone it is gone; a durable store writes it (see SQLiteRecordStore)."""

    def add_output(self, msg_id: str, name: str, text: str) -> None:
        """Add output a running task streamed (``name``: stdout or stderr)."""
        rec = self.records.get(msg_id)
        out, err = (text, "") if name == "stdout" else ("", text)
        if rec is not None:
            self._add_output(rec, out, err)
            self._enforce()
            return
        before_out, before_err = self._early.pop(msg_id, ("", ""))
        self._early[msg_id] = (before_out + out, before_err + err)
        self._early_chars += len(text)
        while self._early and (len(self._early) > EARLY_TASKS or self._early_chars > EARLY_CHARS):
            _, (o, e) = self._early.popitem(last=False)
            self._early_chars -= len(o) + len(e)

    def _add_output(self, rec: Record, out: str, err: str) -> None:
        rec.stdout += out
        rec.stderr += err
        rec.nbytes += len(out) + len(err)
        self.nbytes += len(out) + len(err)

    def mark_resubmitted(self, rec: Record, new_id: str) -> None:
        """Note that a task was resubmitted as ``new_id``."""
        rec.resubmitted = new_id

    def _enforce(self) -> None:
        if len(self.records) <= self.max_records and self.nbytes <= self.max_bytes:
            return
        while self.records and (
            len(self.records) > self.max_records or self.nbytes > self.max_bytes
        ):
            _, rec = self.records.popitem(last=False)
            self._release(rec)
            self.culled += 1

    def _release(self, rec: Record) -> None:
        self.nbytes -= rec.nbytes
        shared = rec.shared
        if shared is not None:
            shared.holders -= 1
            if shared.holders == 0:
                self.nbytes -= shared.nbytes

    def remove(self, msg_id: str) -> None:
        """Forget one record."""
        self._settle()
        rec = self.records.pop(msg_id, None)
        if rec is not None:
            self._release(rec)

    def get(self, msg_id: str) -> Record | None:
        """The record of a task, if still kept."""
        self._settle()
        return self.records.get(msg_id)

    def all(self, full: bool = False) -> Iterator[Record]:
        """Every record kept, oldest first (``full``: with request and reply, which records
        in memory always have)."""
        self._settle()
        return iter(list(self.records.values()))

    def flush(self) -> bool:
        """Store the replies finished lately; write what changed to durable storage (in
        memory, nothing more to do). False if durable storage cannot be written now."""
        self._settle()
        return True

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
    "engine_uuid",
    "resubmitted",
    "stdout",
    "stderr",
)
_BLOBS = ("request", "result")


@dataclass(slots=True)
class _Change:
    """What happened to a task since its row was written: written over the row."""

    engine_id: int | None = None
    engine_uuid: bytes | None = None
    reply: dict[str, Any] | None = None  # the reply's header, without its output
    frames: list[Any] | None = None  # the reply's payload and buffers
    stdout: str = ""
    stderr: str = ""
    resubmitted: str | None = None

    def params(self, msg_id: str) -> tuple[Any, ...]:
        """The values of :data:`_UPDATE` for this change."""
        h = self.reply or {}
        status = None if self.reply is None else h.get("st", "ok")
        result = None if self.frames is None else _pack([msgpack_encode(h), *self.frames])
        return (
            h.get("e", self.engine_id),
            self.engine_uuid,
            h.get("ts"),
            h.get("tc"),
            status,
            h.get("en"),
            self.stdout,
            self.stderr,
            result,
            self.resubmitted,
            msg_id,
        )


# A change moves only the columns it names (NULL: unchanged); output is appended.
_UPDATE = """UPDATE records SET
    engine_id = COALESCE(?, engine_id), engine_uuid = COALESCE(?, engine_uuid),
    started = COALESCE(?, started), completed = COALESCE(?, completed),
    status = COALESCE(?, status), ename = COALESCE(?, ename),
    stdout = COALESCE(stdout, '') || ?, stderr = COALESCE(stderr, '') || ?,
    result = COALESCE(?, result), resubmitted = COALESCE(?, resubmitted)
    WHERE msg_id = ?"""


class SQLiteRecordStore(RecordStore):
    """Records in memory (the bounded working set) and in a SQLite file (durable).

    A record's row is written whole once, after the record is added; everything
    that happens to the task later (its engine, output, reply, a resubmission) is
    written over that row, whether memory still holds the record or not. So every
    finished task's status and result reach the file whatever the memory bounds:
    a task that finishes after more than ``max_records`` others were submitted, or
    a result larger than ``max_bytes`` (that one is then read back from the file).
    Writes go in one transaction per controller loop pass (:meth:`flush`), so the
    hot path pays no disk round trip per task, and before the pass's replies are
    sent (:attr:`durable`): a result a client received from the controller is in
    the file. While another process holds the file's write lock, writes wait
    (and so do the replies) and the loop goes on serving; the controller says so
    in its log. A restored controller finds every finished result and every request
    (to resubmit), up to ``max_rows`` (oldest deleted first).
    """

    durable = True

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
        try:
            # Results are the user's data: owner-only, as are SQLite's -wal and -shm
            # files, which take the database file's permissions.
            create_private_file(Path(path))
            self.db = sqlite3.connect(
                path, timeout=WRITE_WAIT, isolation_level=None, check_same_thread=False
            )
            self._create_table()
        except (OSError, sqlite3.Error) as exc:
            reason = getattr(exc, "strerror", None) or exc  # an OSError's names the path again
            raise OSError(f"cannot open the record database {path}: {reason}") from exc
        self._new: dict[str, Record] = {}  # records added since the last flush: rows to write
        self._changes: dict[str, _Change] = {}  # what to write over rows
        self._deleted: set[str] = set()
        self._locked_since: float | None = None  # when another process's lock stopped writes
        self._next_try = 0.0  # while locked: when to try writing again

    def _create_table(self) -> None:
        """Create the records table, or bring one an older par made up to date."""
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join((*_COLUMNS[1:], *(f"{b} BLOB" for b in _BLOBS)))
        self.db.execute(f"CREATE TABLE IF NOT EXISTS records (msg_id TEXT PRIMARY KEY, {cols})")
        have = {row[1] for row in self.db.execute("PRAGMA table_info(records)")}
        for col in (*_COLUMNS, *_BLOBS):  # a file an older par wrote lacks the newer columns
            if col not in have:
                self.db.execute(f"ALTER TABLE records ADD COLUMN {col}")

    def add(self, record: Record) -> None:
        """Add a record (written at the next flush)."""
        super().add(record)
        self._deleted.discard(record.msg_id)  # a re-used id replaces its old row
        self._changes.pop(record.msg_id, None)
        self._new[record.msg_id] = record

    def _change(self, msg_id: str) -> _Change | None:
        """Where to note what happened to a task, None if its whole row, not written yet,
        carries it (the record is new and memory holds it) or the record was removed."""
        if msg_id in self._deleted or (msg_id in self._new and msg_id in self.records):
            return None
        change = self._changes.get(msg_id)
        if change is None:
            change = self._changes[msg_id] = _Change()
        return change

    def assign(self, msg_id: str, engine_id: int, engine_uuid: bytes) -> None:
        """Note the engine a task was sent to (written with its reply if memory holds
        the record, else at the next flush)."""
        if msg_id in self.records:
            super().assign(msg_id, engine_id, engine_uuid)
        elif change := self._change(msg_id):
            change.engine_id, change.engine_uuid = engine_id, engine_uuid

    def finish(self, msg_id: str, header: dict[str, Any], frames: list[Any] | None) -> None:
        """Fill in a record from its reply (written at the next flush)."""
        super().finish(msg_id, header, frames)
        if change := self._change(msg_id):
            held = self.records.get(msg_id)
            if held is not None:
                change.engine_uuid = held.engine_uuid
            change.reply, out, err = split_output(header)
            change.frames = frames
            change.stdout += out
            change.stderr += err

    def _not_kept(self, rec: Record, header: dict[str, Any], frames: list[Any]) -> None:
        """Write a reply memory does not keep; a record kept without its reply leaves
        memory, so that reads find the reply on disk."""
        held = self.records.get(rec.msg_id)
        if held is not None and held is not rec:  # the id was re-used since: a stale reply
            return
        if held is not None:
            del self.records[rec.msg_id]
            self._release(held)
        if change := self._change(rec.msg_id):
            change.reply, change.frames = header, frames

    def add_output(self, msg_id: str, name: str, text: str) -> None:
        """Add streamed output (written at the next flush)."""
        super().add_output(msg_id, name, text)
        if change := self._change(msg_id):
            if name == "stdout":
                change.stdout += text
            else:
                change.stderr += text

    def mark_resubmitted(self, rec: Record, new_id: str) -> None:
        """Note a resubmission, here and on disk (at the next flush)."""
        super().mark_resubmitted(rec, new_id)
        if change := self._change(rec.msg_id):
            change.resubmitted = new_id

    def remove(self, msg_id: str) -> None:
        """Forget a record here and on disk."""
        super().remove(msg_id)
        self._new.pop(msg_id, None)
        self._changes.pop(msg_id, None)
        self._deleted.add(msg_id)

    def get(self, msg_id: str) -> Record | None:
        """A record from memory, else from disk (with its request and result)."""
        rec = super().get(msg_id)
        if rec is not None or msg_id in self._deleted:
            return rec
        self.flush()  # what happened to it is on disk before it is read
        row = self.db.execute(
            f"SELECT {', '.join((*_COLUMNS, *_BLOBS))} FROM records WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return None if row is None else _from_row(row)

    def all(self, full: bool = False) -> Iterator[Record]:
        """Every record on disk (after a flush), oldest first; with request and reply only
        if ``full``."""
        self.flush()
        blobs = ", ".join(_BLOBS) if full else "NULL, NULL"
        rows = self.db.execute(f"SELECT {', '.join(_COLUMNS)}, {blobs} FROM records ORDER BY rowid")
        return (_from_row(r) for r in rows)

    def flush(self) -> bool:
        """Write new rows and changes in one transaction; keep at most ``max_rows``.

        False, keeping everything to write, while another process holds the database's
        write lock."""
        self._settle()
        if not self._new and not self._changes and not self._deleted:
            return True
        now = time.monotonic()
        if self._locked_since is not None and now < self._next_try:
            return False
        try:
            self._write()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            self._next_try = now + LOCKED_RETRY
            if self._locked_since is None:
                self._locked_since = now
                log.warning(
                    "the record database %s is locked by another process: results wait "
                    "until it can be written",
                    self.path,
                )
            return False
        if self._locked_since is not None:
            log.warning(
                "the record database %s is written again, after %.1f s",
                self.path,
                time.monotonic() - self._locked_since,
            )
            self._locked_since = None
        return True

    def _write(self) -> None:
        """Write what :meth:`flush` holds in one transaction, then forget it."""
        rows = [
            (*(getattr(r, c) for c in _COLUMNS), _pack_request(r), _pack(r.result))
            for r in self._new.values()
        ]
        changes = [change.params(mid) for mid, change in self._changes.items()]
        names = ", ".join((*_COLUMNS, *_BLOBS))
        marks = ", ".join("?" * (len(_COLUMNS) + len(_BLOBS)))
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(f"INSERT OR REPLACE INTO records ({names}) VALUES ({marks})", rows)
            self.db.executemany(_UPDATE, changes)  # after the rows they change, if new
            self.db.executemany(
                "DELETE FROM records WHERE msg_id = ?", [(m,) for m in self._deleted]
            )
            self.db.execute(
                "DELETE FROM records WHERE rowid <= (SELECT MAX(rowid) FROM records) - ?",
                (self.max_rows,),
            )
        self._new.clear()
        self._changes.clear()
        self._deleted.clear()

    def close(self) -> None:
        """Flush (waiting longer for another process's lock) and close the database."""
        self.db.execute(f"PRAGMA busy_timeout = {int(LAST_WRITE_WAIT * 1000)}")
        self._next_try = 0.0
        if not self.flush():
            log.error(
                "the record database %s stayed locked: %d records were not written",
                self.path,
                len(self._new) + len(self._changes),
            )
        self.db.close()

    def __len__(self) -> int:
        self.flush()
        return int(self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0])


def _raw(frames: list[Any] | None) -> list[bytes] | None:
    return None if frames is None else [bytes(buffer_of(f)) for f in frames]


def _pack(frames: list[Any] | None) -> bytes | None:
    return None if frames is None else msgpack_encode(_raw(frames))


def _pack_request(rec: Record) -> bytes | None:
    if rec.header is None:
        return None
    header = {k: v for k, v in rec.header.items() if k not in MESSAGE_KEYS}
    return msgpack_encode({"h": header, "p": _raw(rec.payload), "b": _raw(rec.buffers)})


def _from_row(row: tuple[Any, ...]) -> Record:
    values = dict(zip(_COLUMNS, row[: len(_COLUMNS)], strict=True))
    request, result = row[len(_COLUMNS) :]
    rec = Record(**values)
    if request is not None:
        stored = msgpack_decode(request)
        rec.header, rec.payload, rec.buffers = stored["h"], stored["p"], stored["b"]
    if result is not None:
        rec.result = list(msgpack_decode(result))
    return rec
