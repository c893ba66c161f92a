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
    """Fixed-width time buckets, the newest ``SLOTS`` of them kept (a slot is reused).

    Slot ``b % SLOTS`` holds bucket ``b`` for every bucket of the last ``SLOTS`` up to the
    newest added (zero where nothing was added), so the sums over a window are sums over at
    most two slices of the arrays, however wide the window.
    """

    __slots__ = ("busy", "done", "failed", "newest", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.newest = -1  # the newest bucket added to
        self.busy = array("f", [0.0]) * SLOTS
        self.done = array("I", [0]) * SLOTS
        self.failed = array("I", [0]) * SLOTS

    def add(self, second: int, busy: float, done: int, failed: int) -> None:
        """Add one second's sums to the bucket holding that second."""
        b = second // self.width
        if b > self.newest:
            if self.newest >= 0:  # the slots of the buckets skipped to are reused: emptied
                for part in _slots(max(self.newest + 1, b - SLOTS + 1), b):
                    n = part.stop - part.start
                    self.busy[part] = array("f", [0.0]) * n
                    self.done[part] = self.failed[part] = array("I", [0]) * n
            self.newest = b
        elif b <= self.newest - SLOTS:
            return  # older than anything kept
        i = b % SLOTS
        self.busy[i] += busy
        self.done[i] += done
        self.failed[i] += failed

    def total(self, first: int, n: int) -> Cell:
        """The sums of buckets ``first`` to ``first + n - 1``."""
        parts = _slots(max(first, self.newest - SLOTS + 1, 0), min(first + n - 1, self.newest))
        return Cell(
            sum(sum(self.busy[p]) for p in parts),
            sum(sum(self.done[p]) for p in parts),
            sum(sum(self.failed[p]) for p in parts),
        )

    def cells(self, first: int, n: int) -> list[Cell]:
        """Buckets ``first`` (a bucket number) to ``first + n - 1``, idle where nothing is kept."""
        kept = range(max(first, self.newest - SLOTS + 1), self.newest + 1)
        busy, done, failed = self.busy, self.done, self.failed
        out = []
        for b in range(first, first + n):
            if b in kept:
                i = b % SLOTS
                out.append(Cell(busy[i], done[i], failed[i]))
            else:
                out.append(IDLE)
        return out


def _slots(lo: int, hi: int) -> list[slice]:
    """The slots of buckets ``lo`` to ``hi`` (fewer than ``SLOTS``): one slice, or two where
    they wrap around."""
    if lo > hi:
        return []
    a, b = lo % SLOTS, hi % SLOTS
    return [slice(a, b + 1)] if a <= b else [slice(a, SLOTS), slice(0, b + 1)]


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
