"""Booking what clients ask engines to run, and sending it on.

Every request becomes one pending task per engine call in the ledger, and a
record of each, before or while the engines start on it:

* **Direct** requests name their engines. Most go through the direct device
  (mux.py), which passes the hub a copy: a request to several engines comes
  as one message per engine, each naming its own task. Those that come through
  this loop (a broadcast whose replies the hub gathers, or one naming an
  engine the client does not know) go to their engines first, then are booked.
  A target that is not up gets an EngineError at once.
* **Load-balanced** requests (one task, or a batch of one function's calls)
  are booked and queued in the task scheduler, or held by the dependencies
  until those are met. Once a loop pass, :meth:`Requests.dispatch` sends the
  tasks the scheduler assigned, each engine's share from one request as one
  task batch.

Frames are kept by reference for records and retries; nothing is unpickled.
"""

from __future__ import annotations

import time
from typing import Any

import zmq

from .. import protocol
from ..messages import (
    AFTER,
    ALLOWED,
    CLIENT,
    COALESCE,
    DIRECT,
    ENGINE_KEYS,
    FOLLOW,
    FUNCTION,
    IDS,
    KIND,
    LABEL,
    LOAD_BALANCED,
    QUEUE,
    RECORD_QUEUE,
    RETRIES,
    SUBMITTED,
    TARGETS,
    TIMEOUT,
    join_tasks,
    split_tasks,
)
from ..protocol import Message, Session, send_frames
from .dependencies import Dependencies
from .engines import Engine, EngineRegistry, Pending
from .ledger import Ledger
from .records import Record, Shared
from .replies import Replies
from .scheduler import TaskScheduler


def load_balanced(
    mid: str,
    client: bytes,
    method: str,
    now: float,
    h: dict[str, Any],
    payload: list[Any],
    buffers: list[Any],
) -> Pending:
    """A load-balanced task with the flags of its request header ``h``."""
    p = Pending(
        mid, client, LOAD_BALANCED, method, now, template=h, payload=payload, buffers=buffers
    )
    get = h.get  # one task of a batch after another: read each flag once, plainly
    p.label, p.after, p.follow = get(LABEL), get(AFTER), get(FOLLOW)
    retries, allowed, timeout = get(RETRIES), get(ALLOWED), get(TIMEOUT)
    if retries:
        p.retries = int(retries)
    if allowed is not None:
        p.allowed = set(allowed)
    if timeout:
        p.deadline = time.monotonic() + float(timeout)
    return p


def _client_name(client: Any) -> str:
    return client.hex() if isinstance(client, bytes) else str(client)


class Requests:
    """Books clients' requests and sends them to engines."""

    def __init__(
        self,
        ledger: Ledger,
        engines: EngineRegistry,
        tasks: TaskScheduler,
        dependencies: Dependencies,
        replies: Replies,
        sock: zmq.Socket,
        session: Session,
    ) -> None:
        self.ledger = ledger
        self.engines = engines
        self.tasks = tasks
        self.dependencies = dependencies
        self.replies = replies
        self.sock = sock  # to the engines' work connections
        self.session = session

    def on_request(self, msg: Message) -> None:
        """Book a request that came to this loop, and send or queue it."""
        h = msg.header
        if h.get(QUEUE) == LOAD_BALANCED:
            for p in self._tasks_of(msg):
                self.submit(p)
            return
        # A direct request through this loop goes to its engines first; the controller
        # keeps its books (the pending task, its record) while they start on it.
        live = self._live_targets(h)
        body = msg.body()
        for engine in live:
            if engine is not None:
                send_frames(self.sock, [engine.uuid, *body])
        self._book_direct(msg, live)

    def on_direct_copy(self, msg: Message, lost: bool = False) -> None:
        """Book a direct request the device passed on (or ``lost``: this loop sends it
        on). It names the one engine it went to (a request to several engines goes to
        each as a message of its own); an engine the device could not reach is one that
        is not up here, and gets its error now."""
        h = msg.header
        if not isinstance(h.get(CLIENT), bytes):
            return
        if lost:
            engine = self.engines.by_uuid.get(bytes(msg.routing[0]))
            if engine is not None and engine.state == "up":  # it answers this loop
                send_frames(self.sock, [engine.uuid, *msg.body()])
        self._book_direct(msg, self._live_targets(h), device=not lost)

    def _live_targets(self, h: dict[str, Any]) -> list[Engine | None]:
        """A direct request's target engines, None for each that is not up."""
        if len(h[IDS]) != len(h[TARGETS]):
            raise ValueError("a direct request names as many ids as targets")
        engines = [self.engines.by_id.get(target) for target in h[TARGETS]]
        return [e if e is not None and e.state == "up" else None for e in engines]

    def _book_direct(self, msg: Message, live: list[Engine | None], device: bool = False) -> None:
        """Keep the books of a direct request sent to its ``live`` targets: a pending task
        and a record for each target, and an error for each target that is not up.
        ``device``: the direct device passed it (and its reply comes back that way)."""
        h = msg.header
        client = h[CLIENT]
        now = time.time()
        cname = _client_name(client)
        method = msg.kind
        group = h[IDS][0] if h.get(COALESCE) else None
        if group is not None:
            self.ledger.outbox.gather(group, len(h[IDS]))
        payload, buffers = protocol.detach(msg.payload), protocol.detach(msg.buffers)
        shared = Shared.of([*payload, *buffers])  # every target's record holds the same frames
        ledger = self.ledger
        for mid, target, running in zip(h[IDS], h[TARGETS], live, strict=True):
            p = Pending(mid, client, DIRECT, method, now, engine=target, group=group)
            p.label, p.device = h.get(LABEL), device
            if running is not None:
                ledger.pending[mid] = p
                running.outstanding[mid] = p
            known = self.engines.by_id.get(target)
            ledger.records.add(
                Record(
                    mid,
                    cname,
                    RECORD_QUEUE[DIRECT],
                    method,
                    h.get(SUBMITTED, now),
                    target,
                    label=h.get(LABEL),
                    engine_uuid=known.uuid if known is not None else None,
                    header=h,
                    payload=payload,
                    buffers=buffers,
                    shared=shared,
                )
            )
            ledger.counts["submitted"] += 1
            if running is None:
                ledger.fail(p, "EngineError", f"engine {target} is not registered", target)

    def _tasks_of(self, msg: Message) -> list[Pending]:
        """The load-balanced tasks of a request, recorded: one, or a batch sharing one
        function (see :mod:`par.messages`)."""
        h, method = msg.header, msg.kind
        client, now = h[CLIENT], time.time()
        cname = _client_name(client)
        payload = protocol.detach(msg.payload)
        tasks = split_tasks(h, payload, msg.buffers)
        shared = Shared.of(payload[:1]) if len(tasks) > 1 else None  # the batch's function
        calls = []
        for mid, own, buffers in tasks:
            bufs = protocol.detach(buffers)
            self.ledger.records.add(
                Record(
                    mid,
                    cname,
                    RECORD_QUEUE[LOAD_BALANCED],
                    method,
                    h.get(SUBMITTED, now),
                    label=h.get(LABEL),
                    header=h,
                    payload=own,
                    buffers=bufs,
                    shared=shared,
                )
            )
            calls.append(load_balanced(mid, client, method, now, h, own, bufs))
        return calls

    def submit(self, p: Pending) -> None:
        """Queue a load-balanced task, or hold it until its dependencies are met."""
        ledger = self.ledger
        ledger.pending[p.msg_id] = p
        ledger.counts["submitted"] += 1
        refused = self.tasks.refusal(p)
        if refused is not None:
            ledger.pending.pop(p.msg_id)
            ledger.fail(p, *refused, None)
        elif p.after or p.follow:
            self.dependencies.hold(p)
        else:
            self.tasks.submit(p)

    def send_direct(self, p: Pending, engine: Engine, body: list[Any]) -> None:
        """Send a direct request's frames to its engine, which now holds it."""
        self.ledger.pending[p.msg_id] = p
        engine.outstanding[p.msg_id] = p
        send_frames(self.sock, [engine.uuid, *body])

    def dispatch(self) -> None:
        """Send the tasks the scheduler assigns to engines with room: each engine's run of
        calls of one function as one task batch, whichever requests they came in (a loop of
        ``apply_async`` calls travels as a map's tasks do)."""
        batches: dict[bytes, list[list[Pending]]] = {}
        records, slow = self.ledger.records, self.ledger.outbox.delivery.held
        for task, engine in self.tasks.assign(self.engines, slow):
            records.assign(task.msg_id, engine.id, engine.uuid)
            runs = batches.get(engine.uuid)
            if runs is None:
                batches[engine.uuid] = [[task]]
            elif _joinable(runs[-1][-1], task):
                runs[-1].append(task)
            else:
                runs.append([task])
        for uuid, runs in batches.items():
            for tasks in runs:
                first = tasks[0]
                template = first.template or {}
                header: dict[str, Any] = {KIND: first.method}
                for key in ENGINE_KEYS:
                    if key in template:
                        header[key] = template[key]
                calls = [(t.msg_id, t.payload, t.buffers) for t in tasks]
                payload, buffers = join_tasks(header, calls)
                send_frames(self.sock, [uuid, *self.session.serialize(header, payload, buffers)])


def _joinable(a: Pending, b: Pending) -> bool:
    """Whether two tasks assigned to one engine may travel as one task batch: one request's,
    or calls of one function with the same flags the engine reads (``ENGINE_KEYS``)."""
    if a.template is b.template:
        return True
    ta, tb = a.template, b.template
    if ta is None or tb is None or a.method != "apply" or b.method != "apply":
        return False
    if ta.get(FUNCTION) is None:
        return False
    return all(ta.get(key) == tb.get(key) for key in ENGINE_KEYS)
