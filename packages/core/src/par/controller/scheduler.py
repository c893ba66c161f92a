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
from typing import Any

from .engines import Engine, Pending

SCHEMES = ("leastload", "lru", "plainrandom", "weighted", "pure")


def _leastload(engines: list[Engine]) -> Engine:
    return min(engines, key=lambda e: (len(e.outstanding), e.last_assigned))


def _lru(engines: list[Engine]) -> Engine:
    return min(engines, key=lambda e: e.last_assigned)


def _plainrandom(engines: list[Engine]) -> Engine:
    return random.choice(engines)


def _weighted(engines: list[Engine]) -> Engine:
    return random.choices(engines, [1.0 / (1 + len(e.outstanding)) for e in engines])[0]


_PICK: dict[str, Callable[[list[Engine]], Engine]] = {
    "leastload": _leastload,
    "lru": _lru,
    "plainrandom": _plainrandom,
    "weighted": _weighted,
    "pure": _lru,  # no dependencies, retries or targets: refused at submission
}
SCAN_LIMIT = 2000  # queued tasks examined per dispatch, so restricted tasks cannot stall it


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
        """Pair queued tasks with engines that have room and may run them."""
        if not self.queue:
            return []
        hwm = self.hwm
        free = [e for e in engines if hwm <= 0 or len(e.outstanding) < hwm]
        out: list[tuple[Pending, Engine]] = []
        kept: list[Pending] = []
        scanned = 0
        while self.queue and free and scanned < SCAN_LIMIT:
            task = self.queue.popleft()
            scanned += 1
            candidates = free
            if task.allowed is not None or task.rejected:
                candidates = [
                    e
                    for e in free
                    if (task.allowed is None or e.id in task.allowed) and e.id not in task.rejected
                ]
                if not candidates:
                    kept.append(task)
                    continue
            engine = self.pick(candidates)
            out.append((task, engine))
            engine.outstanding[task.msg_id] = task
            task.engine = engine.id
            if 0 < hwm <= len(engine.outstanding):
                free.remove(engine)
        if kept:  # only the skipped tasks go back, in order: the rest of the queue stays put
            self.queue.extendleft(reversed(kept))
        return out

    def remove(self, msg_ids: set[str]) -> list[Pending]:
        """Take queued tasks out (for abort); return those found."""
        kept: deque[Pending] = deque()
        taken: list[Pending] = []
        for task in self.queue:
            (taken if task.msg_id in msg_ids else kept).append(task)
        self.queue = kept
        return taken


def resolve(
    dep: dict[str, Any], outcome: Callable[[str], tuple[str, int | None]]
) -> tuple[str, list[int]]:
    """Whether a dependency is 'met', must 'wait' or is 'impossible'/'invalid', and the
    engines the counted dependencies ran on.

    ``outcome(msg_id)`` answers ('ok' | 'error' | 'pending' | 'unknown', engine id).
    """
    want_ok, want_err, need_all = dep.get("ok", True), dep.get("err", False), dep.get("all", True)
    counted: list[int] = []
    met = failed = waiting = 0
    for mid in dep.get("ids", []):
        state, engine = outcome(mid)
        if state == "unknown":
            return "invalid", []
        if state == "pending":
            waiting += 1
        elif (state == "ok" and want_ok) or (state == "error" and want_err):
            met += 1
            if engine is not None:
                counted.append(engine)
        else:
            failed += 1
    if need_all:
        if failed:
            return "impossible", counted
        return ("wait" if waiting else "met"), counted
    if met:
        return "met", counted
    return ("wait" if waiting else "impossible"), counted
