"""The hub's view of engines: registration, liveness and per-engine work."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Pending:
    """A request the controller has routed (or queued) and not yet answered.

    A map holds one a task until answered, a hundred thousand at once, so it has slots
    and shares empty defaults (a set a task would cost 216 bytes): the fields that
    change on a rare path (``excluded``, ``watchers``) are replaced, never added to.
    """

    msg_id: str
    client: bytes
    queue: str  # DIRECT or LOAD_BALANCED (par.messages)
    method: str
    submitted: float
    engine: int | None = None
    # Load-balanced: the request's header (shared by a batch) and this task's own frames,
    # kept until answered so that a retry can send them again.
    template: dict[str, Any] | None = None
    payload: list[Any] = field(default_factory=list)
    buffers: list[Any] = field(default_factory=list)
    retries: int = 0
    allowed: set[int] | None = None  # engines this task may run on (None: any)
    # engines it goes to no more: it failed there (and was retried) or they refused it
    excluded: frozenset[int] = frozenset()
    after: dict[str, Any] | None = None
    follow: dict[str, Any] | None = None
    deadline: float | None = None  # monotonic time its dependencies must be met by
    group: str | None = None  # coalesced broadcast this reply belongs to
    label: str | None = None  # the label its client gave it (monitors show it)
    device: bool = False  # a direct request the direct device passed (its reply comes back so)
    watchers: tuple[bytes, ...] = ()  # other clients asking for the result


@dataclass(slots=True)
class Engine:
    """One registered engine (ten thousand of them on a large cluster: slots)."""

    id: int
    uuid: bytes
    pid: int
    host: str
    info: dict[str, Any]
    registered: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.monotonic)
    state: str = "registering"  # registering -> up, once both of these are true
    ready: bool = False  # it said so on its work connection
    hello: bool = False  # the direct device passed on its hello
    fd: int | None = None
    disconnected_at: float | None = None
    outstanding: dict[str, Pending] = field(default_factory=dict)
    completed: int = 0
    failed: int = 0
    last_assigned: int = 0  # the scheduler's assignment count when it last got a task
    task_time: float | None = None  # moving average of its tasks' run time, seconds
    stats: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """A plain dict for events and queries."""
        return {
            "id": self.id,
            "uuid": self.uuid.hex(),
            "pid": self.pid,
            "host": self.host,
            "state": self.state,
            "registered": self.registered,
            "queue": len(self.outstanding),
            "completed": self.completed,
            "failed": self.failed,
            "info": self.info,
            "stats": self.stats,
            "heartbeat_age": round(time.monotonic() - self.last_seen, 3),
        }


class EngineRegistry:
    """Engines by id and by routing identity; hands out integer ids in order."""

    def __init__(self) -> None:
        self.by_id: dict[int, Engine] = {}
        self.by_uuid: dict[bytes, Engine] = {}
        self.by_fd: dict[int, Engine] = {}
        self._next_id = 0
        self._blocks: dict[str, int] = {}

    def register(self, uuid: bytes, pid: int, host: str, info: dict[str, Any]) -> Engine:
        """Add an engine (or return it again if it re-registers) with a fresh id."""
        old = self.by_uuid.get(uuid)
        if old is not None:
            return old
        eid = self._block_id(info)
        previous = info.get("previous_id")
        if (
            eid is None
            and isinstance(previous, int)
            and previous >= 0
            and previous not in self.by_id
        ):
            eid = previous  # an engine coming back to a restored controller keeps its id
            self._next_id = max(self._next_id, eid + 1)
        if eid is None:
            eid = self._next_id
            self._next_id += 1
        engine = Engine(eid, uuid, pid, host, info)
        self.by_id[eid] = engine
        self.by_uuid[uuid] = engine
        return engine

    def _block_id(self, info: dict[str, Any]) -> int | None:
        """Id from a block reserved for an engine group (an MPI job), in rank order.

        An engine that registers with ``group``, ``rank`` and ``size`` in its info gets
        id ``base + rank``, where the group's first engine reserved ``size`` ids.
        """
        group, rank, size = info.get("group"), info.get("rank"), info.get("size")
        if not (isinstance(group, str) and isinstance(rank, int) and isinstance(size, int)):
            return None
        if not 0 <= rank < size:
            return None
        base = self._blocks.get(group)
        if base is None:
            base = self._blocks[group] = self._next_id
            self._next_id += size
        eid = base + rank
        return None if eid in self.by_id else eid

    def remove(self, engine: Engine) -> None:
        """Forget an engine."""
        self.by_id.pop(engine.id, None)
        self.by_uuid.pop(engine.uuid, None)
        if engine.fd is not None and self.by_fd.get(engine.fd) is engine:
            del self.by_fd[engine.fd]

    def set_fd(self, engine: Engine, fd: int) -> None:
        """Remember which connection an engine's work socket arrived on."""
        if engine.fd is not None:
            self.by_fd.pop(engine.fd, None)
        engine.fd = fd
        self.by_fd[fd] = engine

    def up(self) -> Iterator[Engine]:
        """Engines ready for work."""
        return (e for e in self.by_id.values() if e.state == "up")

    def ids(self) -> list[int]:
        """Sorted ids of engines ready for work."""
        return sorted(e.id for e in self.up())
