"""What monitors hear: per-second sums of the work each engine finished, errors and output.

A monitor (``par monitor``, the notebook panel) is a client that asked for
an ``activity`` event every :data:`FLUSH_EVERY` seconds while anything
happened. Rather than a notice per task (20,000 of them for a 20,000-task
map), the controller adds each finished task into the seconds it ran in, per
engine: seconds of work, tasks done, tasks failed; an event carries the sums
added since the last one, so its size follows engines and seconds, not
tasks. It also carries the errors since the last one (type, message,
traceback, label) and what engines printed (streamed, or in a short task's
reply), its tail per engine.

While a monitor watches, the controller keeps the last :data:`BACKLOG`
seconds of sums, and it always keeps the last :data:`ERRORS_KEPT` errors:
a monitor that subscribes gets those first (``backlog``), so it counts what
one watching from the start counts. An unwatched controller pays for errors
only.

An event's data: ``b`` a list of ``[engine, second, busy, done, failed]``
(engine :data:`NO_ENGINE` for tasks the controller failed before any engine
ran them), ``err`` error notices (``id e m en ev tb tc lb``), ``out`` a list
of ``[engine, stream, text]``, and ``seq``: events are numbered, and a
backlog carries the number of the last event before it. A monitor too slow
to take an event misses it (the controller holds nothing for it, see
:mod:`par.controller.delivery`): the gap in ``seq`` says so, and it
subscribes again for a new backlog. When nothing follows the events it
missed, the number of the last event sent (:attr:`Feed.seq`, in the
controller's status) says so. A backlog adds ``backlog: True`` and
``since``, the time from which its sums are complete.

A monitor also asks for the controller's status every second or so. With a
thousand engines the whole engine list is a few hundred kilobytes to build,
send and decode each time, most of it unchanged; :meth:`Feed.changed_engines`
remembers, per client, what it was last sent, and answers with the engines
whose description changed since, every engine's id (so that an engine gone
is seen gone) and the heartbeat ages of the engines :data:`LATE` or more
behind (an age changes every time it is read: the others count as fresh).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from .. import protocol

FLUSH_EVERY = 0.5  # seconds between two events at most once something happened
BACKLOG = 120  # seconds of sums kept for a monitor that subscribes later
ERRORS_KEPT = 200
OUTPUT_TAIL = 4096  # characters of an engine's output an event carries
TRACEBACK_MAX = 16_384  # characters of a traceback an error notice carries
SPLIT_MAX = 2400  # seconds of a long task's work added second by second (the rest is dropped)
NO_ENGINE = -1
LATE = 1.0  # seconds: a heartbeat age that changed-only status replies name

Send = Callable[[dict[str, Any], Iterable[bytes]], None]  # (event data, to these clients)


class Feed:
    """Sums of finished work, errors and output, sent to the monitors at a bounded rate."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.monitors: set[bytes] = set()
        self._added: dict[tuple[int, int], list[float]] = {}  # (engine, second): sums to send
        self._kept: dict[int, dict[int, list[float]]] = {}  # second: engine: sums sent
        self._since = 0.0  # when the kept sums began
        self._errors: deque[tuple[dict[str, Any], Any, str | None]] = deque(maxlen=ERRORS_KEPT)
        self._new_errors = 0  # how many of the errors kept are not sent yet
        self._output: dict[int, list[list[Any]]] = {}
        self._last = 0.0  # when the last event went out
        self._seq = 0  # events sent
        self._described: dict[bytes, dict[int, dict[str, Any]]] = {}  # client: what it was sent

    @property
    def seq(self) -> int:
        """The number of the last event sent."""
        return self._seq

    def ran(self, engine: int | None, started: float | None, ended: float, failed: bool) -> None:
        """Add a finished task: on ``engine``, from ``started`` to ``ended`` (wall clock)."""
        if not self.monitors:
            return
        eid = NO_ENGINE if engine is None else engine
        end = int(ended)
        if started is None or started >= end:  # within one second: nearly every task
            self._add(eid, end, ended - (started or ended), failed)
            return
        second = max(int(started), end - SPLIT_MAX)
        self._add(eid, second, min(second + 1 - started, 1.0), None)
        for s in range(second + 1, end):
            self._add(eid, s, 1.0, None)
        self._add(eid, end, ended - end, failed)

    def _add(self, eid: int, second: int, busy: float, failed: bool | None) -> None:
        """Add work to one second; ``failed`` is None in the seconds a task did not end in."""
        sums = self._added.get((eid, second))
        if sums is None:
            sums = self._added[(eid, second)] = [0.0, 0, 0]
        sums[0] += busy
        if failed is not None:
            sums[2 if failed else 1] += 1

    def error(self, header: dict[str, Any], content: Any, label: str | None) -> None:
        """Keep a failed task's reply header and content (decoded only when sent)."""
        self._errors.append((header, content, label))
        if self.monitors:
            self._new_errors = min(self._new_errors + 1, ERRORS_KEPT)

    def output(self, engine: int, stream: str, text: str) -> None:
        """Add what an engine printed (``stream``: stdout or stderr)."""
        if not self.monitors or not text:
            return
        chunks = self._output.setdefault(engine, [])
        if chunks and chunks[-1][1] == stream:
            chunks[-1][2] = (chunks[-1][2] + text)[-OUTPUT_TAIL:]
        else:
            chunks.append([engine, stream, text[-OUTPUT_TAIL:]])
        while len(chunks) > 1 and sum(len(c[2]) for c in chunks) > OUTPUT_TAIL:
            chunks.pop(0)

    def tick(self, now: float) -> None:
        """Send the monitors what was added, if :data:`FLUSH_EVERY` (monotonic ``now``) has
        passed since the last event."""
        if now - self._last >= FLUSH_EVERY and self._pending():
            self.flush(now)

    def _pending(self) -> bool:
        return bool(self._added or self._new_errors or self._output)

    def flush(self, now: float | None = None) -> None:
        """Send the monitors what was added since the last event, whenever it is."""
        self._last = time.monotonic() if now is None else now
        new = self._new_errors
        errors = [self._notice(*e) for e in list(self._errors)[len(self._errors) - new :]]
        self._new_errors = 0
        added, self._added = self._added, {}
        for (eid, second), sums in added.items():
            kept = self._kept.setdefault(second, {}).setdefault(eid, [0.0, 0, 0])
            for i in range(3):
                kept[i] += sums[i]
        oldest = int(time.time()) - BACKLOG
        for second in [s for s in self._kept if s < oldest]:
            del self._kept[second]
        self._since = max(self._since, oldest)
        data: dict[str, Any] = {"b": [[eid, s, *sums] for (eid, s), sums in added.items()]}
        if errors:
            data["err"] = errors
        if self._output:
            data["out"] = [chunk for chunks in self._output.values() for chunk in chunks]
            self._output = {}
        self._seq += 1
        data["seq"] = self._seq
        self.send(data, self.monitors)

    def subscribe(self, client: bytes) -> None:
        """Add a monitor, and send it the sums and errors kept (after the others get theirs)."""
        if self.monitors:
            if self._pending():
                self.flush()
        else:
            self._since = time.time()
        self.monitors.add(client)
        backlog = [
            [eid, second, *sums]
            for second, engines in self._kept.items()
            for eid, sums in engines.items()
        ]
        errors = [self._notice(*e) for e in self._errors]
        data = {"backlog": True, "since": self._since, "b": backlog, "err": errors}
        self.send({**data, "seq": self._seq}, [client])

    def unsubscribe(self, client: bytes) -> None:
        """Remove a monitor; with the last one gone, the sums are no longer kept."""
        self.monitors.discard(client)
        self._described.pop(client, None)
        if not self.monitors:
            self._added.clear()
            self._kept.clear()
            self._output.clear()
            self._new_errors = 0

    def changed_engines(self, client: bytes, described: list[dict[str, Any]]) -> dict[str, Any]:
        """Status fields for ``client``: ``engines`` whose description changed since it last
        asked (heartbeat ages aside), ``engine_ids`` of them all, ``late`` ``[id, age]`` of
        those whose heartbeat is :data:`LATE` or more behind."""
        before = self._described.get(client, {})
        sent: dict[int, dict[str, Any]] = {}
        changed, late = [], []
        for engine in described:
            eid = engine["id"]
            age = engine["heartbeat_age"]
            seen = {k: v for k, v in engine.items() if k != "heartbeat_age"}
            if before.get(eid) != seen:
                changed.append(engine)
            elif age >= LATE:
                late.append([eid, age])
            sent[eid] = seen
        self._described[client] = sent
        return {"engines": changed, "engine_ids": list(sent), "late": late}

    @staticmethod
    def _notice(header: dict[str, Any], content: Any, label: str | None) -> dict[str, Any]:
        """A failed task as monitors see it."""
        notice = {k: header.get(k) for k in ("id", "e", "m", "tc")}
        notice["lb"] = label
        try:
            decoded = protocol.decode(content)
            notice.update(en=decoded.get("ename"), ev=decoded.get("evalue"))
            notice["tb"] = str(decoded.get("traceback") or "")[-TRACEBACK_MAX:]
        except Exception:
            notice.update(en=header.get("en"), ev="", tb="")
        return notice
