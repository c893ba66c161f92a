"""The hub's operations: what a client asks with a ``query`` message.

A query names its operation (header ``op``) and passes arguments as header
keys; :data:`OPERATIONS` maps each name to a function ``(hub, client,
header) -> answer``. The answer goes back in a ``qr`` message under the
query's id: a plain value in its header, or :class:`Frames` as payload (a
``db_query`` answer can hold records' requests and results); or, for an
operation that waits on engines (``clear``), :data:`LATER`: it answers itself. An operation
refuses bad arguments with a ValueError, which the client raises with its
message; nothing an operation raises stops the controller.

The operations read and change the hub's pieces through ``hub``, the
controller that wires them together (see app.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..messages import (
    CLIENT,
    DATA,
    DIRECT,
    ENGINE_KEYS,
    ERROR,
    IDS,
    KIND,
    LOAD_BALANCED,
    OK,
    OP,
    QUERY_ID,
    RECORD_QUEUE,
    TARGETS,
)
from ..protocol import Message
from . import query
from .engines import Engine, Pending
from .records import Record
from .requests import load_balanced

if TYPE_CHECKING:
    from .app import Controller

SHUTDOWN_DELAY = 0.2  # seconds the hub serves on after a shutdown, to answer it and say so
LATER = object()  # what an operation returns that sends its answer itself, later


@dataclass(slots=True)
class Frames:
    """A query answer sent as payload frames: too large or too binary for a header."""

    frames: list[Any]


def answer(hub: Controller, msg: Message) -> None:
    """Run the operation a query names and send the client its answer."""
    h = msg.header
    op = h.get(OP, "")
    client = h[CLIENT]
    operation = OPERATIONS.get(op)
    reply: dict[str, Any] = {KIND: "qr", QUERY_ID: h.get(QUERY_ID)}
    payload: list[Any] = []
    try:
        if operation is None:
            raise ValueError(f"unknown query {op!r}")
        result = operation(hub, client, h)
        if result is LATER:
            return
        reply[OK] = True
        if isinstance(result, Frames):
            payload = result.frames
        else:
            reply[DATA] = result
    except Exception as exc:
        reply[OK] = False
        # KeyError's str() quotes its message: the message itself, as for any other error
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        reply[ERROR] = [type(exc).__name__, str(text)]
    hub.outbox.send(client, reply, payload)  # after the replies the query caused


# ---- clients ------------------------------------------------------------------------------


def connect(hub: Controller, client: bytes, h: dict[str, Any]) -> dict[str, Any]:
    """Attach a client: what it needs to start (the engines up, the scheme)."""
    hub.outbox.clients[client] = {"since": time.time()}
    return {
        "engines": [e.describe() for e in hub.engines.up()],
        "cluster_id": hub.config.cluster_id,
        "scheme": hub.tasks.scheme,
    }


def ping(hub: Controller, client: bytes, h: dict[str, Any]) -> bool:
    """Say the hub is there (and attach the client again after a restore)."""
    hub.outbox.clients.setdefault(client, {"since": time.time()})
    return True


def close(hub: Controller, client: bytes, h: dict[str, Any]) -> None:
    """Detach a client."""
    hub.outbox.clients.pop(client, None)
    hub.feed.unsubscribe(client)
    hub.outbox.delivery.forget(client)
    hub.tasks.release(client)  # its tasks run; their results go to the records


def monitor(hub: Controller, client: bytes, h: dict[str, Any]) -> bool:
    """Also send this client the monitors' ``activity`` feed, what was kept first (or stop;
    see :mod:`par.controller.feed`)."""
    if h.get("on", True):
        hub.feed.subscribe(client)
    else:
        hub.feed.unsubscribe(client)
    return True


# ---- the cluster --------------------------------------------------------------------------


def engines(hub: Controller, client: bytes, h: dict[str, Any]) -> list[dict[str, Any]]:
    """Every registered engine, described."""
    return [e.describe() for e in hub.engines.by_id.values()]


def queue_status(hub: Controller, client: bytes, h: dict[str, Any]) -> dict[str, Any]:
    """Each engine's requests not finished (``queue``; ``tasks`` the load-balanced ones) and
    totals, and the tasks no engine has yet (``unassigned``: queued, set aside for a slow
    client, or waiting for their dependencies). With ``verbose``, message ids, not counts."""

    def counted(ids: list[str]) -> int | list[str]:
        return ids if h.get("verbose") else len(ids)

    out: dict[str, Any] = {
        str(e.id): {
            "queue": counted(list(e.outstanding)),
            "completed": e.completed,
            "failed": e.failed,
            "tasks": counted([m for m, p in e.outstanding.items() if p.queue == LOAD_BALANCED]),
        }
        for e in hub.engines.up()
    }
    held = [p.msg_id for tasks in hub.tasks.held.values() for p in tasks]
    queued = [p.msg_id for p in hub.tasks.queue]
    out["unassigned"] = counted([*queued, *held, *hub.dependencies.waiting])
    return out


def status(hub: Controller, client: bytes, h: dict[str, Any]) -> dict[str, Any]:
    """The controller's figures: uptime, engines, counts, queues, records, clients (with
    ``changed``, only the engines that changed since this client's last such call: see
    :meth:`par.controller.feed.Feed.changed_engines`)."""
    ledger = hub.ledger
    engines = [_described(e) for e in hub.engines.by_id.values()]
    return {
        "cluster_id": hub.config.cluster_id,
        "uptime": time.time() - hub.started,
        "engines": engines,
        "counts": dict(ledger.counts),
        "queued": hub.tasks.unassigned,
        "slow_clients": len(hub.outbox.delivery.held),
        "pending": len(ledger.pending),
        "records": len(ledger.records),
        "record_bytes": ledger.records.nbytes,
        "dropped": hub.session.dropped,
        "clients": len(hub.outbox.clients),
        "pid": os.getpid(),
        "usage": hub.usage.read(),  # memory and CPU of the hub and its relays (usage.py)
        "engine_room": hub.engine_room,  # engines its open-file limit holds (-1: no bound)
        "heartbeat": hub.control.heartbeat,  # seconds, grown with the engine count
        "heartbeat_timeout": hub.control.heartbeat_timeout,
        "feed_seq": hub.feed.seq,
        **(hub.feed.changed_engines(client, engines) if h.get("changed") else {}),
    }


def _described(engine: Engine) -> dict[str, Any]:
    """An engine as status describes it, with its running task's label if it has one."""
    out = engine.describe()
    running = engine.outstanding.get(engine.stats.get("task") or "")
    if running is not None and running.label is not None:
        out["task_label"] = running.label
    return out


def _targets(hub: Controller, h: dict[str, Any]) -> list[Engine]:
    targets = h.get("targets")
    if targets is None:
        return list(hub.engines.up())
    return [hub.engines.by_id[t] for t in targets if t in hub.engines.by_id]


def signal(hub: Controller, client: bytes, h: dict[str, Any]) -> list[int]:
    """Send engines (all up, or ``targets``) a signal."""
    engines = _targets(hub, h)
    for e in engines:
        hub.control.command(e, {KIND: "signal", "sig": h["sig"]})
    return [e.id for e in engines]


def shutdown(hub: Controller, client: bytes, h: dict[str, Any]) -> list[int]:
    """Stop engines (all up, or ``targets``), and with ``hub`` the controller too."""
    engines = _targets(hub, h)
    for e in engines:
        hub.control.command(e, {KIND: "stop"})
    if h.get("hub"):
        hub.stop(after=SHUTDOWN_DELAY)
    return [e.id for e in engines]


def clear(hub: Controller, client: bytes, h: dict[str, Any]) -> object:
    """Empty the namespaces of engines (all up, or ``targets``), ahead of their queued work;
    answered once each has (see clearing.py)."""
    hub.control.clear(_targets(hub, h), client, str(h.get(QUERY_ID)))
    return LATER


# ---- tasks --------------------------------------------------------------------------------


def abort(hub: Controller, client: bytes, h: dict[str, Any]) -> int:
    """Abort tasks (``ids``, else the client's own; ``all``: everyone's): those queued or
    waiting here at once; those an engine holds, by telling it (it aborts them unless
    they have started); those not here yet (direct requests still on their way through
    the direct device) once they come (see :func:`arrived`). Answers how many it
    aborted here."""
    # The books first catch up with the direct device: a client's direct requests sent
    # just before this abort may have passed it while this loop reads its copies later.
    hub.read_copies()
    ledger = hub.ledger
    pending = ledger.pending
    if h.get("all"):
        ids = set(pending)
    else:
        mine = [p.msg_id for p in pending.values() if p.client == client]
        ids = set(h.get(IDS) or mine)
        ledger.abort_on_arrival(mid for mid in ids if ledger.outcome(mid)[0] == "unknown")
    taken = [*hub.tasks.remove(ids), *hub.dependencies.take(ids)]
    for p in taken:
        pending.pop(p.msg_id, None)
    ledger.fail_together(taken, "TaskAborted", "aborted before start", "aborted")
    _tell_engines(hub, ids)
    return len(taken)


def arrived(hub: Controller, msg_ids: Any) -> None:
    """Abort the direct requests just booked (``msg_ids``, as their header gives them)
    that were aborted before they came."""
    if not isinstance(msg_ids, list):
        return
    early = hub.ledger.aborted_early(msg_ids)
    if early:
        _tell_engines(hub, early)


def _tell_engines(hub: Controller, msg_ids: Iterable[str]) -> None:
    """Tell the engines holding some of these tasks to abort them."""
    by_engine: dict[int, list[str]] = {}
    for mid in msg_ids:
        held = hub.ledger.pending.get(mid)
        if held is not None and held.engine is not None:
            by_engine.setdefault(held.engine, []).append(mid)
    for eid, mids in by_engine.items():
        engine = hub.engines.by_id.get(eid)
        if engine is not None:
            hub.control.command(engine, {KIND: "abort", IDS: mids})


def resend(hub: Controller, client: bytes, h: dict[str, Any]) -> dict[str, list[str]]:
    """Send (now, or when done) the replies of tasks, to this client too; with
    ``finished``, only of those done (a client asking again for replies lost on the way,
    see ``IOThread._ask_again``: the rest reach it as they finish)."""
    sent, later, unknown = [], [], []
    for mid in h[IDS]:
        p = hub.ledger.pending.get(mid)
        rec = hub.ledger.records.get(mid)
        if p is not None:
            if not h.get("finished"):
                p.watchers += (client,)
            later.append(mid)
        elif rec is not None and (reply := rec.reply()) is not None:
            hub.outbox.reply(client, *reply)
            sent.append(mid)
        else:
            unknown.append(mid)
    return {"sent": sent, "pending": later, "unknown": unknown}


def result_status(hub: Controller, client: bytes, h: dict[str, Any]) -> dict[str, Any]:
    """Which tasks are pending, completed (with their records' figures) or unknown."""
    out: dict[str, Any] = {"pending": [], "completed": [], "unknown": []}
    for mid in h[IDS]:
        rec = hub.ledger.records.get(mid)
        if mid in hub.ledger.pending:
            out["pending"].append(mid)
        elif rec is None:
            out["unknown"].append(mid)
        else:
            out["completed"].append(mid)
            out[mid] = rec.describe()
    return out


def purge(hub: Controller, client: bytes, h: dict[str, Any]) -> int:
    """Forget finished tasks' records (``ids``, or those of ``targets``, or all)."""
    ids = h.get(IDS)
    targets = h.get("targets")
    pending, records = hub.ledger.pending, hub.ledger.records
    running = [mid for mid in ids or () if mid in pending]
    if running:
        raise ValueError(f"task {running[0]} is still pending; wait for it before purging it")
    chosen = [
        rec.msg_id
        for rec in records.all()
        if rec.msg_id not in pending
        and (ids is None or rec.msg_id in ids)
        and (targets is None or rec.engine_id in targets)
    ]
    for mid in chosen:
        records.remove(mid)
    return len(chosen)


def history(hub: Controller, client: bytes, h: dict[str, Any]) -> list[str]:
    """Every recorded message id, oldest first."""
    return [rec.msg_id for rec in hub.ledger.records.all()]


def db_query(hub: Controller, client: bytes, h: dict[str, Any]) -> Frames:
    """Records matching a query (see query.py), with the keys asked for."""
    q, keys = h.get("query") or {}, h.get("keys")
    query.check(q, keys or ())  # before reading any record
    records = hub.ledger.records.all(full=query.needs_full(q, keys))
    return Frames(query.answer(records, q, keys))


def resubmit(hub: Controller, client: bytes, h: dict[str, Any]) -> dict[str, str]:
    """Run tasks again from their kept requests, under the ids the client chose.

    All are checked before any is sent: one that cannot be resubmitted fails the call.
    """
    olds, news = h[IDS], h["new"]
    if len(olds) != len(news) or len(set(news)) != len(news):
        raise ValueError("resubmit needs one new, distinct message id per task")
    if any(mid in hub.ledger.pending for mid in news):
        raise ValueError("resubmit was given a message id already in use")
    originals = [_resubmittable(hub, mid) for mid in olds]
    now = time.time()
    cname = client.hex()
    records = hub.ledger.records
    for (rec, engine), new in zip(originals, news, strict=True):
        header, payload, buffers = rec.header or {}, rec.payload or [], rec.buffers or []
        records.add(
            Record(
                new,
                cname,
                rec.queue,
                rec.method,
                now,
                None if engine is None else engine.id,
                label=rec.label,
                engine_uuid=None if engine is None else engine.uuid,
                header=header,
                payload=payload,
                buffers=buffers,
                shared=rec.shared,
            )
        )
        records.mark_resubmitted(rec, new)
        if engine is None:
            hub.requests.submit(
                load_balanced(new, client, rec.method, now, header, payload, buffers)
            )
            continue
        hub.ledger.counts["submitted"] += 1
        routing = {KIND: rec.method, IDS: [new], TARGETS: [engine.id]}
        routing.update({k: header[k] for k in ENGINE_KEYS if k in header})
        p = Pending(new, client, DIRECT, rec.method, now, engine=engine.id, label=rec.label)
        hub.requests.send_direct(p, engine, hub.session.serialize(routing, payload, buffers))
    return dict(zip(olds, news, strict=True))


def _resubmittable(hub: Controller, mid: str) -> tuple[Record, Engine | None]:
    """The record of a task that can run again (finished or still pending, as ipyparallel's
    hub allows: it runs again under its new id), and the engine a direct one goes back to;
    raise KeyError for an unknown task, ValueError saying why another cannot run again."""
    records = hub.ledger.records
    rec = records.get(mid)
    if rec is None:
        culled = (
            " (or it was culled: the controller keeps its latest --max-records records "
            "within --max-record-bytes)"
            if records.culled
            else ""
        )
        raise KeyError(f"no record of task {mid} on the controller{culled}")
    if rec.payload is None or rec.header is None:
        raise ValueError(
            f"the request of task {mid} was not kept (larger than --max-record-bytes): "
            "submit it again"
        )
    if rec.queue == RECORD_QUEUE[LOAD_BALANCED]:
        return rec, None
    engine = hub.engines.by_id.get(rec.engine_id if rec.engine_id is not None else -1)
    if engine is None or engine.state != "up":
        raise ValueError(
            f"engine {rec.engine_id}, which ran direct task {mid}, is gone; a direct task "
            "is resubmitted only to its own engine"
        )
    return rec, engine


Operation = Callable[["Controller", bytes, dict[str, Any]], Any]
OPERATIONS: dict[str, Operation] = {
    "connect": connect,
    "ping": ping,
    "close": close,
    "monitor": monitor,
    "engines": engines,
    "queue_status": queue_status,
    "status": status,
    "signal": signal,
    "shutdown": shutdown,
    "clear": clear,
    "abort": abort,
    "resend": resend,
    "result_status": result_status,
    "purge": purge,
    "history": history,
    "db_query": db_query,
    "resubmit": resubmit,
}
