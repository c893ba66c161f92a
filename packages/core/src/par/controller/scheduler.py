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

The ordered schemes (``leastload``, ``lru``, ``pure``) cost the same per task
whatever the number of engines: engines with room wait in a heap by the
scheme's order, entered when they come up or answer (:meth:`freed`; once a
pass, however many replies came), so a task takes the top engine rather than
looking at every engine. An entry goes stale
when its engine's load changes after it entered: each engine's newest entry
is the one that counts, and one whose engine took direct requests since goes
back in at its new place when it reaches the top. The random schemes draw
from the engines with room, listed once a pass.

An ordered scheme gives the engine at the top a run of queued tasks rather
than one, and the controller sends a run as one message (:meth:`TaskScheduler.run`).
When many more tasks wait than engines have room, the run is the queue's even
share of the engines in the heap. When the queue is merely longer than a pass
should spread one message a task (``RUN_SPREAD`` messages), an engine whose
tasks are known to be tiny takes up to as many as it runs in
``PREFETCH_SECONDS``: a map of 100,000 no-op tasks on 10,000 engines then costs
a message for several tasks even though no queue forms, while a few tasks, or
tasks of unknown or long run time, still spread one an engine. Either way the
engine's room bounds the run. A task restricted to some engines (targets, or
engines it failed or was rejected on) picks among those it may run on.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Container, Iterable

from .engines import Engine, EngineRegistry, Pending

Order = Callable[[Engine], tuple[int, ...]]


def _load(engine: Engine) -> tuple[int, int]:
    return len(engine.outstanding), engine.last_assigned


def _recency(engine: Engine) -> tuple[int]:
    return (engine.last_assigned,)


def _plainrandom(engines: list[Engine]) -> Engine:
    return random.choice(engines)


def _weighted(engines: list[Engine]) -> Engine:
    return random.choices(engines, [1.0 / (1 + len(e.outstanding)) for e in engines])[0]


def _twobin(engines: list[Engine]) -> Engine:
    if len(engines) < 2:
        return engines[0]
    return min(random.sample(engines, 2), key=_load)


# The ordered schemes: engines by this key, the least first.
_ORDER: dict[str, Order] = {"leastload": _load, "lru": _recency, "pure": _recency}
# The random schemes: a pick among the engines with room.
_DRAW: dict[str, Callable[[list[Engine]], Engine]] = {
    "plainrandom": _plainrandom,
    "weighted": _weighted,
    "twobin": _twobin,
}
# "pure": no dependencies, retries or targets (refused at submission); "none": no load
# balancing, every task refused at submission.
SCHEMES = ("leastload", "lru", "plainrandom", "weighted", "twobin", "pure", "none")
PREFETCH_SECONDS = 0.005
PREFETCH_MAX = 64
SCAN_LIMIT = 2000  # queued tasks examined per dispatch, so restricted tasks cannot stall it
STALE_SLACK = 1024  # stale heap entries tolerated beyond one an engine before a rebuild
FULL_PREFETCH = PREFETCH_SECONDS / PREFETCH_MAX  # tasks this short fill an engine's room
RUN_SPREAD = 256  # messages a pass spreads a long queue over before tiny tasks go in runs


class TaskScheduler:
    """A queue of unassigned tasks and a scheme for choosing engines."""

    def __init__(self, scheme: str = "leastload", hwm: int | None = None) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}: choose one of {', '.join(SCHEMES)}")
        self.scheme = scheme
        self.order = _ORDER.get(scheme)
        self.draw = _DRAW.get(scheme)
        self.hwm = hwm
        self.queue: deque[Pending] = deque()
        self.held: dict[bytes, deque[Pending]] = {}  # set aside for slow clients, in order
        self.stranded: dict[str, Pending] = {}  # queued with a timeout, no engine may run them
        self.due = False  # tasks were queued, or engines got room, since the last assign
        self._assigned = 0  # assignments so far: engines' last_assigned, for LRU order
        self._ready: list[tuple[tuple[int, ...], int]] = []  # (order, engine id), a heap
        self._newest: dict[int, tuple[int, ...]] = {}  # each engine's newest entry's order
        self._freed: dict[int, Engine] = {}  # engines that answered since the last assign

    def refusal(self, task: Pending) -> tuple[str, str] | None:
        """Why this scheme cannot take a task, as (error name, message); None if it can."""
        if self.order is None and self.draw is None:
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

    def freed(self, engine: Engine) -> None:
        """Note that an engine may have room again (it answered, or came up). It enters
        the heap at the next :meth:`assign`, once however many replies it sent meanwhile."""
        if self.order is not None:
            self._freed[engine.id] = engine
        if self.queue:
            self.due = True

    def forget(self, engine: Engine) -> None:
        """Drop an engine that left from the engines waiting for work."""
        self._newest.pop(engine.id, None)
        self._freed.pop(engine.id, None)

    def room(self, engine: Engine) -> int:
        """How many requests an engine may hold (0: no limit)."""
        if self.hwm is not None:
            return self.hwm
        took = engine.task_time
        return 2 if took is None else max(2, _prefetched(took))

    def has_room(self, engine: Engine) -> bool:
        """Whether an engine may take another request."""
        room = self.room(engine)
        return room <= 0 or len(engine.outstanding) < room

    @property
    def unassigned(self) -> int:
        """How many tasks wait for an engine, set aside or not."""
        return len(self.queue) + sum(len(tasks) for tasks in self.held.values())

    def assign(
        self, engines: EngineRegistry, slow: Container[bytes] = ()
    ) -> list[tuple[Pending, Engine]]:
        """Pair queued tasks with engines that are up, have room and may run them; set aside
        the tasks of ``slow`` clients."""
        self.due = False
        if self._freed:
            for answered in self._freed.values():
                self._offer(answered)
            self._freed.clear()
        if not self.queue or (self.order is None and self.draw is None):
            return []
        # The random schemes draw from a list of the engines with room, made once a pass.
        free = None if self.draw is None else [e for e in engines.up() if self.has_room(e)]
        out: list[tuple[Pending, Engine]] = []
        kept: list[Pending] = []
        scanned = 0
        share, spread = self.share(), -(-len(self.queue) // RUN_SPREAD)
        running: Engine | None = None  # the engine taking a run of tasks, out of the heap
        left = 0  # tasks its run may take yet
        while self.queue and scanned < SCAN_LIMIT:
            task = self.queue.popleft()
            if slow and task.client in slow:
                self.held.setdefault(task.client, deque()).append(task)
                continue
            scanned += 1
            if task.allowed is not None or task.excluded:
                engine = self._restricted(task, engines, free)
                if engine is None:
                    kept.append(task)
                    if task.deadline is not None:
                        self.stranded[task.msg_id] = task
                    continue
                self.stranded.pop(task.msg_id, None)
            elif free is None:
                if running is not None and (left <= 0 or not self.has_room(running)):
                    self._offer(running)  # its run is over: back in the heap at its new place
                    running = None
                if running is None:
                    running = self._top(engines)
                    if running is not None:
                        left = self.run(running, share, spread)
                engine = running
                left -= 1
            else:
                engine = self._drawn(free)
            if engine is None:  # no engine has room
                self.queue.appendleft(task)
                break
            self._assigned += 1
            engine.last_assigned = self._assigned
            out.append((task, engine))
            engine.outstanding[task.msg_id] = task
            task.engine = engine.id
            if free is None:
                if engine is not running:
                    self._offer(engine)  # back in the heap at its new place
            elif not self.has_room(engine) and engine in free:
                free.remove(engine)
        if running is not None:
            self._offer(running)
        if kept:  # only the skipped tasks go back, in order: the rest of the queue stays put
            self.queue.extendleft(reversed(kept))
        return out

    def share(self) -> int:
        """How many queued tasks an engine at the top of an ordered scheme's heap takes in a
        row this pass: the queue's even share of the engines in the heap, at least 1."""
        return max(1, len(self.queue) // max(1, len(self._newest)))

    def run(self, engine: Engine, share: int, spread: int) -> int:
        """How many queued tasks an engine taken from the top of the heap takes in a row:
        the queue's ``share``, or, when the queue needs ``spread`` tasks a message to go out
        in ``RUN_SPREAD`` messages, as many of those as the engine runs in
        ``PREFETCH_SECONDS`` (1 while its task time is unknown); its room bounds either."""
        took = engine.task_time
        if spread <= share or took is None:
            return share
        return max(share, min(spread, _prefetched(took)))

    def _offer(self, engine: Engine) -> None:
        """Put an engine with room in the heap of an ordered scheme, at its place now."""
        order = self.order
        if order is not None and self.has_room(engine):
            self._enter(engine, order(engine))

    def _enter(self, engine: Engine, order: tuple[int, ...]) -> None:
        """Put an engine in the heap at ``order``, its newest entry."""
        newest, eid = self._newest, engine.id
        if newest.get(eid) == order:
            return  # already there
        newest[eid] = order
        ready = self._ready
        heapq.heappush(ready, (order, eid))
        if len(ready) > 2 * len(newest) + STALE_SLACK:
            self._ready = [(o, e) for e, o in newest.items()]
            heapq.heapify(self._ready)

    def _top(self, engines: EngineRegistry) -> Engine | None:
        """Take the first engine of the ordered scheme that is up and has room, if any."""
        order_of = self.order
        assert order_of is not None
        newest, by_id = self._newest, engines.by_id
        while self._ready:
            order, eid = heapq.heappop(self._ready)
            if newest.get(eid) != order:
                continue  # stale: the engine entered again since, or left
            del newest[eid]
            engine = by_id.get(eid)
            if engine is None or engine.state != "up" or not self.has_room(engine):
                continue  # it comes back when it answers
            now = order_of(engine)
            if now != order:  # it took direct requests since it entered
                self._enter(engine, now)
                continue
            return engine
        return None

    def _drawn(self, free: list[Engine]) -> Engine | None:
        """Draw an engine with room by the random scheme, if any has room."""
        assert self.draw is not None
        return self.draw(free) if free else None

    def _restricted(
        self, task: Pending, engines: EngineRegistry, free: list[Engine] | None
    ) -> Engine | None:
        """The engine with room a restricted task goes to, by the scheme, if any."""
        if task.allowed is not None:
            allowed = (engines.by_id.get(eid) for eid in task.allowed)
            pool = [e for e in allowed if e is not None and e.state == "up"]
        else:
            pool = list(engines.up()) if free is None else free
        candidates = [e for e in pool if e.id not in task.excluded and self.has_room(e)]
        if not candidates:
            return None
        if self.order is not None:
            return min(candidates, key=self.order)
        assert self.draw is not None
        return self.draw(candidates)

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


def _prefetched(took: float) -> int:
    """How many tasks of ``took`` seconds an engine runs in ``PREFETCH_SECONDS``, at most
    ``PREFETCH_MAX``."""
    if took <= FULL_PREFETCH:  # also spares a division by a time of zero
        return PREFETCH_MAX
    return int(PREFETCH_SECONDS / took)


def _split(tasks: Iterable[Pending], msg_ids: set[str]) -> tuple[deque[Pending], list[Pending]]:
    """The tasks not named in ``msg_ids`` (in order), and those named."""
    kept: deque[Pending] = deque()
    taken: list[Pending] = []
    for task in tasks:
        (taken if task.msg_id in msg_ids else kept).append(task)
    return kept, taken
