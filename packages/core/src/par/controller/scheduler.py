"""The load-balanced task scheduler: which engine runs the next task.

Tasks wait here until an engine has fewer than ``hwm`` requests
outstanding. A high-water mark of 2 keeps one task queued on each busy
engine, so an engine never idles for a round trip between tasks, while
still leaving most of the queue free to go to whichever engine finishes
first.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable

from .engines import Engine, Pending

SCHEMES = ("leastload", "lru", "plainrandom")


def _leastload(engines: list[Engine]) -> Engine:
    return min(engines, key=lambda e: (len(e.outstanding), e.last_assigned))


def _lru(engines: list[Engine]) -> Engine:
    return min(engines, key=lambda e: e.last_assigned)


def _plainrandom(engines: list[Engine]) -> Engine:
    return random.choice(engines)


_PICK: dict[str, Callable[[list[Engine]], Engine]] = {
    "leastload": _leastload,
    "lru": _lru,
    "plainrandom": _plainrandom,
}


class TaskScheduler:
    """A queue of unassigned tasks and a scheme for choosing engines."""

    def __init__(self, scheme: str = "leastload", hwm: int = 2) -> None:
        if scheme not in _PICK:
            raise ValueError(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
        self.scheme = scheme
        self.pick = _PICK[scheme]
        self.hwm = hwm
        self.queue: deque[Pending] = deque()

    def submit(self, task: Pending) -> None:
        """Queue a task for the next free engine."""
        self.queue.append(task)

    def assign(self, engines: Iterable[Engine]) -> list[tuple[Pending, Engine]]:
        """Pair queued tasks with engines that have room, as far as both go."""
        if not self.queue:
            return []
        hwm = self.hwm
        free = [e for e in engines if hwm <= 0 or len(e.outstanding) < hwm]
        out: list[tuple[Pending, Engine]] = []
        while self.queue and free:
            engine = self.pick(free)
            task = self.queue.popleft()
            out.append((task, engine))
            engine.outstanding[task.msg_id] = task
            task.engine = engine.id
            if 0 < hwm <= len(engine.outstanding):
                free.remove(engine)
        return out

    def remove(self, msg_ids: set[str]) -> list[Pending]:
        """Take queued tasks out (for abort); return those found."""
        kept: deque[Pending] = deque()
        taken: list[Pending] = []
        for task in self.queue:
            (taken if task.msg_id in msg_ids else kept).append(task)
        self.queue = kept
        return taken
