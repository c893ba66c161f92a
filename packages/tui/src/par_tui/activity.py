"""What engines did over time: busy seconds, tasks done and failed, per time bucket.

The controller sums finished tasks per engine and per second and sends the
sums (see :mod:`par.controller.feed`); :class:`Activity` adds them into
rings of fixed-width buckets, at two scales (1 s and 10 s per bucket), for
each engine, each host and the whole cluster. A lane of the task stream is
one ring read between two times, so what it shows is true over the whole
window whatever the number of tasks, and a host's or the cluster's lane
costs no more to draw than one engine's.

Nothing here knows about widgets: :meth:`Activity.cells` answers "what
happened in these buckets", and the task stream decides how it looks.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

SCALES = (1, 10)  # seconds per bucket: a lane cell is one bucket
SLOTS = 240  # buckets kept per scale: 4 minutes at 1 s, 40 minutes at 10 s
ALL = "all"  # the key of the whole cluster's ring


@dataclass(frozen=True, slots=True)
class Cell:
    """One bucket of a lane: seconds of work finished in it, and the tasks that ended in it."""

    busy: float
    done: int
    failed: int


IDLE = Cell(0.0, 0, 0)


class Ring:
    """Fixed-width time buckets, the newest ``SLOTS`` of them kept (a bucket is reused)."""

    __slots__ = ("bucket", "busy", "done", "failed", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.bucket = array("q", [-1]) * SLOTS  # which bucket each slot holds now
        self.busy = array("f", [0.0]) * SLOTS
        self.done = array("I", [0]) * SLOTS
        self.failed = array("I", [0]) * SLOTS

    def add(self, second: int, busy: float, done: int, failed: int) -> None:
        """Add one second's sums to the bucket holding that second."""
        b = second // self.width
        i = b % SLOTS
        if self.bucket[i] != b:
            if self.bucket[i] > b:
                return  # older than anything kept
            self.bucket[i] = b
            self.busy[i], self.done[i], self.failed[i] = busy, done, failed
            return
        self.busy[i] += busy
        self.done[i] += done
        self.failed[i] += failed

    def total(self, first: int, n: int) -> Cell:
        """The sums of buckets ``first`` to ``first + n - 1``."""
        busy, done, failed = 0.0, 0, 0
        for b in range(first, first + n):
            i = b % SLOTS
            if self.bucket[i] == b:
                busy += self.busy[i]
                done += self.done[i]
                failed += self.failed[i]
        return Cell(busy, done, failed)

    def cells(self, first: int, n: int) -> list[Cell]:
        """Buckets ``first`` (a bucket number) to ``first + n - 1``, idle where nothing is kept."""
        out = []
        for b in range(first, first + n):
            i = b % SLOTS
            if self.bucket[i] == b:
                out.append(Cell(self.busy[i], self.done[i], self.failed[i]))
            else:
                out.append(IDLE)
        return out


class Activity:
    """Rings of every engine, host and the cluster, fed with the controller's per-second sums."""

    def __init__(self) -> None:
        self.rings: dict[object, tuple[Ring, ...]] = {}
        self.since: float | None = None  # the earliest time the sums are known from

    def clear(self) -> None:
        """Forget everything (a new connection, or a backlog that takes the place of it all)."""
        self.rings.clear()
        self.since = None

    def known_from(self, t: float) -> None:
        """Say that sums are complete from time ``t`` on (the earliest wins)."""
        if self.since is None or t < self.since:
            self.since = t

    def add(self, sums: dict[tuple[object, int], list[float]]) -> None:
        """Add ``(key, second): [busy, done, failed]`` sums to the rings of those keys."""
        for (key, second), (busy, done, failed) in sums.items():
            rings = self.rings.get(key)
            if rings is None:
                rings = self.rings[key] = tuple(Ring(w) for w in SCALES)
            for ring in rings:
                ring.add(second, busy, int(done), int(failed))

    def cells(self, key: object, scale: int, first: int, n: int) -> Sequence[Cell]:
        """``n`` buckets of ``key``'s ring at ``scale`` (seconds per bucket) from bucket
        ``first``."""
        rings = self.rings.get(key)
        if rings is None:
            return [IDLE] * n
        return rings[SCALES.index(scale)].cells(first, n)

    def total(self, key: object, scale: int, first: int, n: int) -> Cell:
        """The sums of :meth:`cells` ``(key, scale, first, n)``."""
        rings = self.rings.get(key)
        if rings is None:
            return IDLE
        return rings[SCALES.index(scale)].total(first, n)
