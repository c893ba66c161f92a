"""The load-balanced task scheduler: which engine runs the next task.

Tasks wait here until an engine has room: fewer than ``hwm`` requests
outstanding. With ``hwm=None`` (the default) the room adapts to how long
the engine's tasks take: enough queued work for about ``PREFETCH_SECONDS``,
at least 2 tasks (so an engine never idles for a round trip between tasks)
and at most ``PREFETCH_MAX``. Tiny tasks then travel many to a message,
while long ones stay in the queue for whichever engine finishes first.
The controller's loop assigns at most once a pass, and only when it is
``due``: tasks were queued or an engine got room since the last time.

A task of a client that is not reading its results (see ``delivery.py``) is
set aside rather than assigned, so its results do not pile up in the
controller; it goes back to the head of the queue once the client reads again.

A task no engine up may run (its targets are gone, or it failed on all of
them) stays queued for an engine that may; with a timeout, it is
``stranded`` until then, and :meth:`TaskScheduler.expired` takes it out
once its timeout has passed, as ipyparallel's scheduler times such a task out.

Schemes, as ipyparallel's: ``leastload`` (fewest outstanding, least recently
used first), ``lru``, ``plainrandom``, ``weighted`` (random, weighted by
inverse load), ``twobin`` (the less loaded of two picked at random), ``pure``
(no retries, targets or dependencies) and ``none`` (no load balancing: every
load-balanced task is refused).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Container, Iterable

from .engines import Engine, Pending


def _load(engine: Engine) -> tuple[int, int]:
    return len(engine.outstanding), engine.last_assigned


def _leastload(engines: list[Engine]) -> Engine:
    return min(engines, key=_load)


def _lru(engines: list[Engine]) -> Engine:
    return min(engines, key=lambda e: e.last_assigned)


def _plainrandom(engines: list[Engine]) -> Engine:
    return random.choice(engines)


def _weighted(engines: list[Engine]) -> Engine:
    return random.choices(engines, [1.0 / (1 + len(e.outstanding)) for e in engines])[0]


def _twobin(engines: list[Engine]) -> Engine:
    if len(engines) < 2:
        return engines[0]
    return min(random.sample(engines, 2), key=_load)


_PICK: dict[str, Callable[[list[Engine]], Engine] | None] = {
    "leastload": _leastload,
    "lru": _lru,
    "plainrandom": _plainrandom,
    "weighted": _weighted,
    "twobin": _twobin,
    "pure": _lru,  # no dependencies, retries or targets: refused at submission
    "none": None,  # no load balancing: every task refused at submission
}
SCHEMES = tuple(_PICK)
PREFETCH_SECONDS = 0.005
PREFETCH_MAX = 64
SCAN_LIMIT = 2000  # queued tasks examined per dispatch, so restricted tasks cannot stall it


class TaskScheduler:
    """A queue of unassigned tasks and a scheme for choosing engines."""

    def __init__(self, scheme: str = "leastload", hwm: int | None = None) -> None:
        if scheme not in _PICK:
            raise ValueError(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
        self.scheme = scheme
        self.pick = _PICK[scheme]
        self.hwm = hwm
        self.queue: deque[Pending] = deque()
        self.held: dict[bytes, deque[Pending]] = {}  # set aside for slow clients, in order
        self.stranded: dict[str, Pending] = {}  # queued with a timeout, no engine may run them
        self.due = False  # tasks were queued, or engines got room, since the last assign
        self._assigned = 0  # assignments so far: engines' last_assigned, for LRU order

    def refusal(self, task: Pending) -> tuple[str, str] | None:
        """Why this scheme cannot take a task, as (error name, message); None if it can."""
        if self.pick is None:
            return (
                "RuntimeError",
                "load balancing is off: the controller runs with --scheme none; start it with "
                f"another scheme ({', '.join(s for s in SCHEMES if s != 'none')})",
            )
        flags = task.retries or task.allowed is not None or task.after or task.follow
        if self.scheme == "pure" and (flags or task.deadline):
            return (
                "ValueError",
                "the 'pure' scheme supports no retries, targets, dependencies or timeouts",
            )
        return None

    def submit(self, task: Pending) -> None:
        """Queue a task for the next free engine."""
        self.queue.append(task)
        self.due = True

    def freed(self) -> None:
        """Note that an engine has room again (it answered, or came up)."""
        if self.queue:
            self.due = True

    def room(self, engine: Engine) -> int:
        """How many requests an engine may hold (0: no limit)."""
        if self.hwm is not None:
            return self.hwm
        if engine.task_time is None:
            return 2
        return max(2, min(PREFETCH_MAX, int(PREFETCH_SECONDS / max(engine.task_time, 1e-6))))

    @property
    def unassigned(self) -> int:
        """How many tasks wait for an engine, set aside or not."""
        return len(self.queue) + sum(len(tasks) for tasks in self.held.values())

    def assign(
        self, engines: Iterable[Engine], slow: Container[bytes] = ()
    ) -> list[tuple[Pending, Engine]]:
        """Pair queued tasks with engines that have room and may run them; set aside the
        tasks of ``slow`` clients."""
        self.due = False
        pick = self.pick
        if not self.queue or pick is None:
            return []
        engines = list(engines)
        room = {e.id: self.room(e) for e in engines}
        free = [e for e in engines if room[e.id] <= 0 or len(e.outstanding) < room[e.id]]
        out: list[tuple[Pending, Engine]] = []
        kept: list[Pending] = []
        scanned = 0
        while self.queue and free and scanned < SCAN_LIMIT:
            task = self.queue.popleft()
            if slow and task.client in slow:
                self.held.setdefault(task.client, deque()).append(task)
                continue
            scanned += 1
            candidates = free
            if task.allowed is not None or task.excluded:
                candidates = [
                    e
                    for e in free
                    if (task.allowed is None or e.id in task.allowed) and e.id not in task.excluded
                ]
                if not candidates:
                    kept.append(task)
                    if task.deadline is not None:
                        self.stranded[task.msg_id] = task
                    continue
                self.stranded.pop(task.msg_id, None)
            engine = pick(candidates)
            self._assigned += 1
            engine.last_assigned = self._assigned
            out.append((task, engine))
            engine.outstanding[task.msg_id] = task
            task.engine = engine.id
            if 0 < room[engine.id] <= len(engine.outstanding):
                free.remove(engine)
        if kept:  # only the skipped tasks go back, in order: the rest of the queue stays put
            self.queue.extendleft(reversed(kept))
        return out

    def release(self, client: bytes) -> None:
        """Queue again, first, the tasks set aside for a client that reads again."""
        tasks = self.held.pop(client, ())
        if tasks:
            self.queue.extendleft(reversed(tasks))
            self.due = True

    def expired(self, now: float) -> list[Pending]:
        """Take out the stranded tasks whose timeout has passed (monotonic ``now``)."""
        late = {
            mid
            for mid, task in self.stranded.items()
            if task.deadline is None or task.deadline < now
        }
        for mid in late:
            del self.stranded[mid]
        if not late:
            return []
        self.queue, taken = _split(self.queue, late)
        return taken

    def remove(self, msg_ids: set[str]) -> list[Pending]:
        """Take queued tasks out (for abort), set aside or not; return those found."""
        for mid in msg_ids:
            self.stranded.pop(mid, None)
        self.queue, taken = _split(self.queue, msg_ids)
        for client, tasks in list(self.held.items()):
            kept, gone = _split(tasks, msg_ids)
            taken += gone
            if kept:
                self.held[client] = kept
            else:
                del self.held[client]
        return taken


def _split(tasks: Iterable[Pending], msg_ids: set[str]) -> tuple[deque[Pending], list[Pending]]:
    """The tasks not named in ``msg_ids`` (in order), and those named."""
    kept: deque[Pending] = deque()
    taken: list[Pending] = []
    for task in tasks:
        (taken if task.msg_id in msg_ids else kept).append(task)
    return kept, taken
