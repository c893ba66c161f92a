"""The controller process: one poll loop that routes messages between roles.

Sockets (all bound by the controller)::

    client  ROUTER  <- clients' request DEALERs; -> clients' reply DEALERs
    engine  ROUTER  <-> engines' work DEALERs (requests out, replies in)
    control ROUTER  <-> engines' control DEALERs (registration, heartbeats,
                        abort / signal / stop, streamed output)
    direct, engine_direct  ROUTERs of the direct device (see mux.py):
                        clients' direct requests to engines and the
                        replies back, routed in C; the hub reads copies

Requests and replies are forwarded frame for frame: the controller reads
only their compact header and never unpickles a payload. A client's reply
connection gets what the hub sends (replies of load-balanced tasks, streamed
output, cluster events) and what its engines answer it on the direct path.

The hub (registration, heartbeats, records, queries) lives in this loop;
the direct path routes a request to its target engines in the device's
thread (a broadcast that coalesces its replies goes through this loop);
the task path queues load-balanced requests in :class:`TaskScheduler`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import zmq
from zmq.utils.monitor import parse_monitor_message

from .. import protocol
from ..connection import ConnectionInfo
from ..curve import make_server, server_keypair, wanted
from ..messages import ENGINE_KEYS, join_replies, join_tasks, split_replies, split_tasks
from ..protocol import Message, Session, recv_frames, recv_ready, send_frames
from . import query
from .engines import Engine, EngineRegistry, Pending
from .feed import Feed
from .mux import IN, NUDGE, DirectDevice
from .records import Record, RecordStore, Shared, SQLiteRecordStore
from .scheduler import TaskScheduler, resolve

log = logging.getLogger("par.controller")

# A reply on its way to a client: header, payload, buffers, and its frames as received
# (None if it came in a batch), which are forwarded as they are when it travels alone.
Part = tuple[dict[str, Any], list[Any], list[Any], list[Any] | None]
COPIES_DELAY = 0.005  # seconds the direct device's copies gather before the hub reads them


@dataclass(slots=True)
class Frames:
    """A query answer sent as payload frames: too large or too binary for a header."""

    frames: list[Any]


@dataclass
class ControllerConfig:
    """Settings of a controller; every field has a default that works."""

    cluster_id: str = "default"
    ip: str = "127.0.0.1"
    scheme: str = "leastload"
    hwm: int | None = None  # requests an engine may hold; None: adapt to task length
    heartbeat: float = 1.0  # seconds between engine heartbeats
    heartbeat_timeout: float = 6.0  # silence after which an engine is lost
    disconnect_grace: float = 0.5  # a dropped connection must come back within this
    registration_timeout: float = 30.0
    max_records: int = 10_000
    max_record_bytes: int = 256 << 20
    location: str = ""
    curve: str = "auto"  # auto: encrypt whenever listening beyond loopback
    db: str = "memory"  # or "sqlite": records (and results) survive a controller restart
    db_path: str = "records.sqlite"


class Controller:
    """Hub and schedulers of one cluster, driven by :meth:`run`."""

    def __init__(
        self,
        config: ControllerConfig,
        key: bytes | None = None,
        restore: ConnectionInfo | None = None,
    ) -> None:
        self.config = config
        self.key = restore.key_bytes if restore else (key or protocol.new_key())
        self.session = Session(self.key)
        self.ctx = zmq.Context()
        self.engines = EngineRegistry()
        self.tasks = TaskScheduler(config.scheme, config.hwm)
        self.records = (
            SQLiteRecordStore(config.db_path, config.max_records, config.max_record_bytes)
            if config.db == "sqlite"
            else RecordStore(config.max_records, config.max_record_bytes)
        )
        self.pending: dict[str, Pending] = {}
        self.clients: dict[bytes, dict[str, Any]] = {}
        self.feed = Feed(self._send_activity)
        self._waiting: dict[str, Pending] = {}  # tasks whose dependencies are not met yet
        self._dependents: dict[str, set[str]] = {}  # msg id -> waiting tasks that depend on it
        self._groups: dict[str, dict[str, Any]] = {}  # coalesced broadcasts being collected
        self._outbox: dict[bytes, list[Part]] = {}  # replies per client, sent once per loop pass
        self._want_dispatch = False
        self.counts = {"submitted": 0, "completed": 0, "failed": 0, "aborted": 0}
        self.started = time.time()
        self.running = False
        self._stop_at: float | None = None
        self.curve_keys = server_keypair() if wanted(config.curve, config.ip) else None
        if restore is not None and restore.curve_serverkey:
            raise ValueError(
                "cannot restore a Curve-encrypted controller: its secret key was never saved"
            )

        self.client_sock = self._router()
        self.engine_sock = self._router()
        self.control_sock = self._router()
        self.monitor = self.engine_sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        direct, engine_direct = self._router(), self._router()
        ip = config.ip
        old = restore.to_dict() if restore else {}
        self.urls = {
            name: self._bind(sock, ip, old.get(f"{name}_url"))
            for name, sock in (
                ("client", self.client_sock),
                ("engine", self.engine_sock),
                ("control", self.control_sock),
                ("direct", direct),
                ("engine_direct", engine_direct),
            )
        }
        self.device = DirectDevice(self.ctx, direct, engine_direct)
        self.copies = self.device.copies
        # Large messages come in chunks; their copies are kept as they came, for the records.
        self.copies_joiner = protocol.Assembler(self.session, keep_chunks=True)
        self._copies_left: dict[str, int] = {}  # a request's copies still to come, by first id

    def _router(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        if self.curve_keys is not None:
            make_server(sock, self.curve_keys[1])
        return sock

    @staticmethod
    def _bind(sock: zmq.Socket, ip: str, previous: str | None = None) -> str:
        host = f"[{ip}]" if ":" in ip else ip
        if previous:  # restoring: the same port, so engines and clients find us again
            port = int(previous.rsplit(":", 1)[1])
            sock.bind(f"tcp://{host}:{port}")
            return f"tcp://{host}:{port}"
        port = sock.bind_to_random_port(f"tcp://{host}")
        return f"tcp://{host}:{port}"

    def connection_info(self) -> ConnectionInfo:
        """What clients and engines need to reach this controller."""
        urls = dict(self.urls)
        if self.config.ip in ("0.0.0.0", "*", "::"):
            public = self.config.location or socket.gethostname()
            urls = {k: v.replace(f"//{self.config.ip}", f"//{public}") for k, v in urls.items()}
        return ConnectionInfo(
            cluster_id=self.config.cluster_id,
            key=self.key.hex(),
            client_url=urls["client"],
            engine_url=urls["engine"],
            control_url=urls["control"],
            direct_url=urls["direct"],
            engine_direct_url=urls["engine_direct"],
            controller_pid=os.getpid(),
            location=self.config.location or socket.gethostname(),
            curve_serverkey=self.curve_keys[0] if self.curve_keys else "",
        )

    # ---- sending -------------------------------------------------------------------------

    def _send(self, sock: zmq.Socket, ident: bytes, header: dict[str, Any], payload=()) -> None:
        send_frames(sock, [ident, *self.session.serialize(header, payload)])

    def _to_client(self, client: bytes, body: list[Any]) -> None:
        send_frames(self.client_sock, [client, *body])

    def _reply_to(self, client: bytes, part: Part) -> None:
        """Queue a reply for a client; :meth:`_flush_replies` sends the pass's replies together."""
        queued = self._outbox.get(client)
        if queued is None:
            self._outbox[client] = [part]
        else:
            queued.append(part)

    def _flush_replies(self) -> None:
        """Send each client its queued replies: one as it came, several as one ``replies``."""
        for client, parts in self._outbox.items():
            if len(parts) == 1 and parts[0][3] is not None:
                self._to_client(client, parts[0][3])
                continue
            header, payload, buffers = join_replies([(h, p, b) for h, p, b, _ in parts])
            self._to_client(client, self.session.serialize(header, payload, buffers))
        self._outbox.clear()

    def _event(self, kind: str, data: dict[str, Any]) -> None:
        self._flush_replies()  # what happened before the event reaches clients before it
        header = {"t": "event", "k": kind, "d": data, "time": time.time()}
        frames = self.session.serialize(header)
        for client in self.clients:
            send_frames(self.client_sock, [client, *frames])

    def _error_reply(
        self, p: Pending, ename: str, evalue: str, engine: int | None, status: str = "error"
    ) -> None:
        """Answer a request the controller itself fails (or, with status 'aborted', aborts)."""
        content = protocol.encode({"ename": ename, "evalue": evalue, "traceback": ""})
        header = {"t": "reply", "id": p.msg_id, "st": status, "en": ename, "e": engine}
        header["m"] = p.method
        self.records.finish(p.msg_id, header, [content])
        self.counts["failed" if status == "error" else "aborted"] += 1
        self._reply_to(p.client, (header, [content], [], None))
        if status == "error":
            self.feed.ran(None, None, time.time(), failed=True)  # no engine counts it
            self.feed.error(header, content, p.label)

    # ---- client requests -----------------------------------------------------------------

    def _on_client(self, msg: Message) -> None:
        kind = msg.kind
        if kind in ("apply", "execute"):
            self._on_request(msg)
        elif kind == "query":
            self._on_query(msg)
        else:
            log.warning("unknown client message type %r", kind)

    def _on_request(self, msg: Message) -> None:
        h = msg.header
        client = h["c"]
        if h.get("q") == "t":
            now = time.time()
            cname = client.hex() if isinstance(client, bytes) else str(client)
            for p in self._task_calls(msg, cname, now):
                self._submit_task(p)
            return
        # A direct request through this loop (a broadcast that coalesces its replies, or
        # one naming an engine the client does not know) goes to its engines first; the
        # controller keeps its books (the pending task, its record) while they start on it.
        live = self._live_targets(h)
        body = msg.body()
        for engine in live:
            if engine is not None:
                send_frames(self.engine_sock, [engine.uuid, *body])
        self._book_direct(msg, live)

    def _live_targets(self, h: dict[str, Any]) -> list[Engine | None]:
        """A direct request's target engines, None for each that is not up."""
        if len(h["ids"]) != len(h["tg"]):
            raise ValueError("a direct request names as many ids as targets")
        engines = [self.engines.by_id.get(target) for target in h["tg"]]
        return [e if e is not None and e.state == "up" else None for e in engines]

    def _book_direct(self, msg: Message, live: list[Engine | None]) -> None:
        """Keep the books of a direct request sent to its ``live`` targets: a pending task
        and a record for each target, and an error for each target that is not up."""
        h = msg.header
        client = h["c"]
        now = time.time()
        cname = client.hex() if isinstance(client, bytes) else str(client)
        method = msg.kind
        group = h["ids"][0] if h.get("co") else None
        if group is not None:
            self._groups[group] = {"client": client, "n": len(h["ids"]), "replies": []}
        payload, buffers = protocol.detach(msg.payload), protocol.detach(msg.buffers)
        shared = Shared.of([*payload, *buffers])  # every target's record holds the same frames
        for mid, target, running in zip(h["ids"], h["tg"], live, strict=True):
            p = Pending(mid, client, "d", method, now, engine=target, group=group)
            p.label = h.get("lb")
            if running is not None:
                self.pending[mid] = p
                running.outstanding[mid] = p
            known = self.engines.by_id.get(target)
            self.records.add(
                Record(
                    mid,
                    cname,
                    "mux",
                    method,
                    h.get("ts", now),
                    target,
                    label=h.get("lb"),
                    engine_uuid=known.uuid if known is not None else None,
                    header=h,
                    payload=payload,
                    buffers=buffers,
                    shared=shared,
                )
            )
            self.counts["submitted"] += 1
            if running is None:
                self._error_reply(p, "EngineError", f"engine {target} is not registered", target)

    def _on_direct_copy(self, msg: Message, lost: bool = False) -> None:
        """Book a direct request the device passed on (or ``lost``: this loop sends it
        on). A request to several engines comes once per engine: the first copy books
        them all (an engine the device could not reach is one that is not up here, and
        gets its error now)."""
        h = msg.header
        if not isinstance(h.get("c"), bytes):
            return
        if lost:
            engine = self.engines.by_uuid.get(bytes(msg.routing[0]))
            if engine is not None and engine.state == "up":  # it answers this loop
                send_frames(self.engine_sock, [engine.uuid, *msg.body()])
        first = str(h["ids"][0])
        left = self._copies_left.pop(first, None)
        if left is not None:
            if left > 1:
                self._copies_left[first] = left - 1
            return
        if len(h["ids"]) > 1:
            self._copies_left[first] = len(h["ids"]) - 1
        self._book_direct(msg, self._live_targets(h))

    def _send_direct(self, p: Pending, engine: Engine, body: list[Any]) -> None:
        """Send a direct request's frames to its engine, which now holds it."""
        self.pending[p.msg_id] = p
        engine.outstanding[p.msg_id] = p
        send_frames(self.engine_sock, [engine.uuid, *body])

    def _task_calls(self, msg: Message, cname: str, now: float) -> list[Pending]:
        """The load-balanced tasks of a request: one, or a batch sharing one function (see
        :mod:`par.messages`)."""
        h, method = msg.header, msg.kind
        payload = protocol.detach(msg.payload)
        tasks = split_tasks(h, payload, msg.buffers)
        shared = Shared.of(payload[:1]) if len(tasks) > 1 else None  # the batch's function
        calls = []
        for mid, own, buffers in tasks:
            bufs = protocol.detach(buffers)
            p = self._task_pending(mid, h["c"], method, now, h, own, bufs)
            self.records.add(
                Record(
                    mid,
                    cname,
                    "task",
                    method,
                    h.get("ts", now),
                    label=h.get("lb"),
                    header=h,
                    payload=own,
                    buffers=bufs,
                    shared=shared,
                )
            )
            calls.append(p)
        return calls

    @staticmethod
    def _task_pending(
        mid: str,
        client: bytes,
        method: str,
        now: float,
        h: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
    ) -> Pending:
        """A load-balanced task with the flags of its request header ``h``."""
        p = Pending(mid, client, "t", method, now, template=h, payload=payload, buffers=buffers)
        p.label = h.get("lb")
        p.retries = int(h.get("rt", 0))
        p.allowed = set(h["al"]) if h.get("al") is not None else None
        p.after, p.follow = h.get("af"), h.get("fo")
        p.deadline = time.monotonic() + float(h["to"]) if h.get("to") else None
        return p

    def _submit_task(self, p: Pending) -> None:
        """Queue a load-balanced task, or hold it until its dependencies are met."""
        self.pending[p.msg_id] = p
        self.counts["submitted"] += 1
        refused = self.tasks.refusal(p)
        if refused is not None:
            self.pending.pop(p.msg_id)
            self._error_reply(p, *refused, None)
        elif p.after or p.follow:
            self._wait_for_dependencies(p)
        else:
            self.tasks.submit(p)
            self._want_dispatch = True

    def _dispatch(self) -> None:
        """Send queued tasks to engines with room: each engine's share as few messages."""
        self._want_dispatch = False
        batches: dict[tuple[bytes, int], list[Pending]] = {}
        for task, engine in self.tasks.assign(self.engines.up()):
            rec = self.records.get(task.msg_id)
            if rec is not None:
                rec.engine_id, rec.engine_uuid = engine.id, engine.uuid
            batches.setdefault((engine.uuid, id(task.template)), []).append(task)
        for (uuid, _), tasks in batches.items():
            tmpl = tasks[0].template or {}
            header: dict[str, Any] = {"t": tasks[0].method}
            for key in ENGINE_KEYS:
                if key in tmpl:
                    header[key] = tmpl[key]
            payload, buffers = join_tasks(header, [(t.msg_id, t.payload, t.buffers) for t in tasks])
            send_frames(self.engine_sock, [uuid, *self.session.serialize(header, payload, buffers)])

    # ---- engine work replies ---------------------------------------------------------------

    def _on_engine(self, msg: Message, frames: list[Any]) -> None:
        ident = bytes(msg.routing[0]) if msg.routing else b""
        engine = self.engines.by_uuid.get(ident)
        if engine is None:
            log.warning("work message from unknown engine %s", ident.hex())
            return
        if msg.kind == "ready":
            fd = frames[-1].get(zmq.SRCFD) if hasattr(frames[-1], "get") else None
            if isinstance(fd, int) and fd >= 0:
                self.engines.set_fd(engine, fd)
            engine.disconnected_at = None
            engine.ready = True
            self._up(engine)
        else:
            self._on_replies(engine, msg, delivered=False)

    def _on_reply_copy(self, msg: Message, lost: bool = False) -> None:
        """Account for a reply the device passed to its client (or ``lost``: this loop
        passes it on), or note an engine's hello (sent to no one): the device reaches
        that engine from now on."""
        engine = self.engines.by_uuid.get(bytes(msg.routing[1]))
        if engine is None:
            return
        if msg.kind == "hello":
            engine.hello = True
            self._up(engine)
        else:
            self._on_replies(engine, msg, delivered=not lost)

    def _up(self, engine: Engine) -> None:
        """An engine is up once both the controller and the direct device reach it."""
        if engine.state != "up" and engine.ready and engine.hello:
            engine.state = "up"
            log.info("engine %d up (pid %d on %s)", engine.id, engine.pid, engine.host)
            self._event("engine_up", engine.describe())
        self._want_dispatch = True

    def _on_replies(self, engine: Engine, msg: Message, delivered: bool) -> None:
        """Account for an engine's reply, or its batch of replies (``delivered``: the
        direct device passed them to their client already)."""
        if msg.kind == "reply":
            self._on_reply(
                engine,
                msg.header,
                msg.payload,
                msg.buffers,
                None if delivered else msg.body(),
                delivered,
            )
        elif msg.kind == "replies":
            for h, payload, buffers in split_replies(msg.header, msg.payload, msg.buffers):
                self._on_reply(engine, h, payload, buffers, None, delivered)

    def _on_reply(
        self,
        engine: Engine,
        h: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
        body: list[Any] | None,
        delivered: bool = False,
    ) -> None:
        """Account for one finished request and pass its reply on (``body``: as received;
        ``delivered``: its client has it already, from the direct device)."""
        mid = str(h.get("id"))
        p = self.pending.get(mid)
        engine.outstanding.pop(mid, None)
        status = h.get("st", "ok")
        if p is not None and p.queue == "t" and status == "error" and self._retry(p, engine, h):
            engine.failed += 1
            self._feed_reply(engine, h, failed=True)
            return
        self.pending.pop(mid, None)
        if isinstance(h.get("ts"), float) and isinstance(h.get("tc"), float):
            took, avg = h["tc"] - h["ts"], engine.task_time
            engine.task_time = took if avg is None else 0.8 * avg + 0.2 * took
        if status == "ok":
            engine.completed += 1
            self.counts["completed"] += 1
        elif status == "aborted":
            self.counts["aborted"] += 1
        else:
            engine.failed += 1
            self.counts["failed"] += 1
            self.feed.error(h, payload[0] if payload else None, p.label if p else None)
        if status != "aborted":
            self._feed_reply(engine, h, failed=status != "ok")
        self.records.finish(mid, h, [*payload, *buffers])
        if p is not None:
            if p.group is not None:
                self._coalesce(p, h, payload, buffers)
            elif not delivered:
                self._reply_to(p.client, (h, payload, buffers, body))
            for watcher in p.watchers:
                self._reply_to(watcher, (h, payload, buffers, body))
        if mid in self._dependents:
            self._wake(mid)
        if self.tasks.queue:
            self._want_dispatch = True

    def _feed_reply(self, engine: Engine, h: dict[str, Any], failed: bool) -> None:
        """Tell the monitors' feed of an engine's finished task: its work and its output."""
        self.feed.ran(engine.id, h.get("ts"), h.get("tc") or time.time(), failed)
        for key, stream in (("o", "stdout"), ("r", "stderr")):
            if key in h:
                self.feed.output(engine.id, stream, str(h[key]))

    def _retry(self, p: Pending, engine: Engine, h: dict[str, Any]) -> bool:
        """Queue a failed load-balanced task again if it was rejected or has retries left."""
        if h.get("en") in ("TaskRejectError", "UnmetDependency"):  # try it on another engine
            p.rejected.add(engine.id)
            able = {e.id for e in self.engines.up()} - p.rejected
            if p.allowed is not None:
                able &= p.allowed
            if not able:
                return False
        elif p.retries > 0:
            p.retries -= 1
        else:
            return False
        p.engine = None
        self.tasks.submit(p)
        self._want_dispatch = True
        return True

    def _coalesce(
        self, p: Pending, h: dict[str, Any], payload: list[Any], buffers: list[Any]
    ) -> None:
        """Hold a broadcast's replies and send them to the client as one message."""
        group = self._groups.get(p.group or "")
        if group is None:
            return
        group["replies"].append((h, payload, buffers, None))
        if len(group["replies"]) < group["n"]:
            return
        del self._groups[p.group or ""]
        for part in group["replies"]:
            self._reply_to(group["client"], part)

    # ---- dependencies ----------------------------------------------------------------------

    def _outcome(self, msg_id: str) -> tuple[str, int | None]:
        if msg_id in self.pending:
            return "pending", None
        rec = self.records.get(msg_id)
        if rec is None:
            return "unknown", None
        if rec.status == "ok":
            return "ok", rec.engine_id
        if rec.status == "pending":
            return "pending", None
        return "error", rec.engine_id

    def _wait_for_dependencies(self, p: Pending) -> None:
        verdict = self._dependencies_verdict(p)
        if verdict == "wait":
            self._waiting[p.msg_id] = p
            for dep in (p.after, p.follow):
                for dep_id in (dep or {}).get("ids", []):
                    self._dependents.setdefault(dep_id, set()).add(p.msg_id)
        elif verdict == "met":
            self.tasks.submit(p)
            self._want_dispatch = True
        else:
            self.pending.pop(p.msg_id, None)
            self._error_reply(p, *verdict_error(verdict), None)

    def _dependencies_verdict(self, p: Pending) -> str:
        states = []
        for kind, dep in (("after", p.after), ("follow", p.follow)):
            if not dep:
                continue
            state, where = resolve(dep, self._outcome)
            states.append(state)
            if kind == "follow" and state == "met":
                places = set(where) if not dep.get("all", True) else _common(where)
                p.allowed = places if p.allowed is None else p.allowed & places
        for state in ("invalid", "impossible", "wait"):
            if state in states:
                return state
        if p.allowed is not None and not p.allowed:
            return "impossible"
        return "met"

    def _wake(self, done_id: str) -> None:
        for mid in self._dependents.pop(done_id, set()):
            p = self._waiting.get(mid)
            if p is None:
                continue
            verdict = self._dependencies_verdict(p)
            if verdict == "wait":
                continue
            del self._waiting[mid]
            if verdict == "met":
                self.tasks.submit(p)
            else:
                self.pending.pop(mid, None)
                self._error_reply(p, *verdict_error(verdict), None)
        self._want_dispatch = True

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        for mid, p in list(self._waiting.items()):
            if p.deadline is not None and now > p.deadline:
                del self._waiting[mid]
                self.pending.pop(mid, None)
                self._error_reply(
                    p, "TaskTimeout", "dependencies were not met within the timeout", None
                )

    def _send_activity(self, data: dict[str, Any], to: Iterable[bytes]) -> None:
        """Send monitors an ``activity`` event (see :mod:`par.controller.feed`)."""
        header = {"t": "event", "k": "activity", "d": data, "time": time.time()}
        frames = self.session.serialize(header)
        for client in to:
            send_frames(self.client_sock, [client, *frames])

    # ---- engine control channel ------------------------------------------------------------

    def _on_control(self, msg: Message) -> None:
        h = msg.header
        kind = msg.kind
        ident = bytes(msg.routing[0])
        engine = self.engines.by_uuid.get(ident)
        if kind == "hb":
            if engine is None:
                self._send(self.control_sock, ident, {"t": "rereg"})
                return
            engine.last_seen = time.monotonic()
            if "stats" in h:
                engine.stats = h["stats"]
            self._send(self.control_sock, ident, {"t": "hbok"})
        elif kind == "reg":
            engine = self.engines.register(ident, int(h["pid"]), str(h["host"]), h.get("info", {}))
            engine.last_seen = time.monotonic()
            log.info("engine %d registering (pid %d on %s)", engine.id, engine.pid, engine.host)
            self._event("engine_registering", engine.describe())
            reply = {"t": "reg_ok", "id": engine.id, "hb": self.config.heartbeat}
            self._send(self.control_sock, ident, reply)
        elif kind == "stream":
            self._read_copies()  # the task's request and record, if it came on the direct path
            mid = h.get("id", "")
            p = self.pending.get(mid)
            body = msg.body()
            # The engine names the task's client: a copy of a direct request may reach
            # this loop after the output the task streams.
            client = p.client if p is not None else h.get("c")
            if isinstance(client, bytes):
                self._to_client(client, body)
            if h.get("n") in ("stdout", "stderr"):
                self.records.add_output(str(mid), h["n"], str(h.get("d", "")))
                if engine is not None:
                    self.feed.output(engine.id, h["n"], str(h.get("d", "")))
        elif kind == "unreg" and engine is not None:
            self._lose(engine, "stopped", f"engine {engine.id} stopped")

    def _lose(self, engine: Engine, how: str, reason: str) -> None:
        """Unregister an engine and fail what it held."""
        self._read_copies()  # what it answered on the direct path is not failed
        self.engines.remove(engine)
        log.warning("engine %d %s: %s", engine.id, how, reason)
        held = list(engine.outstanding.items())
        engine.outstanding.clear()
        engine.state = how
        # The event goes first: a client that sees the error already sees the engine gone.
        self._event("engine_" + how, {**engine.describe(), "reason": reason})
        text = f"engine {engine.id} (pid {engine.pid} on {engine.host}) {reason}"
        for mid, p in held:
            if p.queue == "t" and p.retries > 0:
                p.retries -= 1
                p.engine = None
                self.tasks.submit(p)
                continue
            self.pending.pop(mid, None)
            self._error_reply(p, "EngineError", f"{text} while holding task {mid}", engine.id)
        self._want_dispatch = True

    def _on_disconnect(self, fd: int) -> None:
        engine = self.engines.by_fd.get(fd)
        if engine is not None and engine.disconnected_at is None:
            engine.disconnected_at = time.monotonic()

    def _check_liveness(self) -> None:
        now = time.monotonic()
        cfg = self.config
        for engine in list(self.engines.by_id.values()):
            silent = now - engine.last_seen
            if (
                engine.disconnected_at is not None
                and now - engine.disconnected_at > cfg.disconnect_grace
            ):
                self._lose(
                    engine, "lost", "closed its connection (the process exited or was killed)"
                )
            elif silent > cfg.heartbeat_timeout:
                self._lose(engine, "lost", f"missed heartbeats for {silent:.1f} s")
            elif engine.state == "registering" and silent > cfg.registration_timeout:
                self._lose(engine, "lost", "registered but never became ready")

    # ---- queries ---------------------------------------------------------------------------

    def _on_query(self, msg: Message) -> None:
        h = msg.header
        op = h.get("op", "")
        client = h["c"]
        handler = getattr(self, "_q_" + op, None)
        reply: dict[str, Any] = {"t": "qr", "qid": h.get("qid")}
        payload: list[Any] = []
        try:
            if handler is None:
                raise ValueError(f"unknown query {op!r}")
            answer = handler(client, h)
            reply["ok"] = True
            if isinstance(answer, Frames):
                payload = answer.frames
            else:
                reply["d"] = answer
        except Exception as exc:
            reply["ok"] = False
            reply["err"] = f"{type(exc).__name__}: {exc}"
        self._flush_replies()  # replies a query caused arrive before its answer
        self._send(self.client_sock, client, reply, payload)

    def _q_connect(self, client: bytes, h: dict[str, Any]) -> dict[str, Any]:
        self.clients[client] = {"since": time.time()}
        return {
            "engines": [e.describe() for e in self.engines.up()],
            "cluster_id": self.config.cluster_id,
            "scheme": self.tasks.scheme,
        }

    def _q_ping(self, client: bytes, h: dict[str, Any]) -> bool:
        self.clients.setdefault(client, {"since": time.time()})  # re-attach after a restore
        return True

    def _q_close(self, client: bytes, h: dict[str, Any]) -> None:
        self.clients.pop(client, None)
        self.feed.unsubscribe(client)

    def _q_monitor(self, client: bytes, h: dict[str, Any]) -> bool:
        """Also send this client the ``activity`` feed (see :mod:`par.controller.feed`), after
        what it kept."""
        if h.get("on", True):
            self.feed.subscribe(client)
        else:
            self.feed.unsubscribe(client)
        return True

    def _q_engines(self, client: bytes, h: dict[str, Any]) -> list[dict[str, Any]]:
        return [e.describe() for e in self.engines.by_id.values()]

    def _q_queue_status(self, client: bytes, h: dict[str, Any]) -> dict[str, Any]:
        """Per engine: its requests not finished (``queue``; ``tasks`` the load-balanced
        ones), completed and failed counts; ``unassigned`` the tasks no engine has yet. With
        ``verbose``, ``queue``, ``tasks`` and ``unassigned`` list message ids."""

        def counted(ids: list[str]) -> int | list[str]:
            return ids if h.get("verbose") else len(ids)

        out: dict[str, Any] = {
            str(e.id): {
                "queue": counted(list(e.outstanding)),
                "completed": e.completed,
                "failed": e.failed,
                "tasks": counted([m for m, p in e.outstanding.items() if p.queue == "t"]),
            }
            for e in self.engines.up()
        }
        waiting = [p.msg_id for p in self.tasks.queue] + list(self._waiting)
        out["unassigned"] = counted(waiting)
        return out

    def _q_status(self, client: bytes, h: dict[str, Any]) -> dict[str, Any]:
        return {
            "cluster_id": self.config.cluster_id,
            "uptime": time.time() - self.started,
            "engines": [self._describe_running(e) for e in self.engines.by_id.values()],
            "counts": dict(self.counts),
            "queued": len(self.tasks.queue),
            "pending": len(self.pending),
            "records": len(self.records),
            "record_bytes": self.records.nbytes,
            "dropped": self.session.dropped,
            "clients": len(self.clients),
            "pid": os.getpid(),
        }

    @staticmethod
    def _describe_running(engine: Engine) -> dict[str, Any]:
        """An engine as status describes it, with its running task's label if it has one."""
        out = engine.describe()
        running = engine.outstanding.get(engine.stats.get("task") or "")
        if running is not None and running.label is not None:
            out["task_label"] = running.label
        return out

    def _q_abort(self, client: bytes, h: dict[str, Any]) -> list[str]:
        if h.get("all"):
            ids = set(self.pending)
        else:
            mine = [p.msg_id for p in self.pending.values() if p.client == client]
            ids = set(h.get("ids") or mine)
        aborted = []
        waiting = [self._waiting.pop(mid) for mid in ids if mid in self._waiting]
        for p in [*self.tasks.remove(ids), *waiting]:
            self.pending.pop(p.msg_id, None)
            self._error_reply(p, "TaskAborted", "aborted before start", None, "aborted")
            aborted.append(p.msg_id)
        by_engine: dict[int, list[str]] = {}
        for mid in ids:
            held = self.pending.get(mid)
            if held is not None and held.engine is not None:
                by_engine.setdefault(held.engine, []).append(mid)
        for eid, mids in by_engine.items():
            engine = self.engines.by_id.get(eid)
            if engine is not None:
                self._send(self.control_sock, engine.uuid, {"t": "abort", "ids": mids})
        return aborted

    def _targets(self, h: dict[str, Any]) -> list[Engine]:
        targets = h.get("targets")
        if targets is None:
            return list(self.engines.up())
        return [self.engines.by_id[t] for t in targets if t in self.engines.by_id]

    def _q_signal(self, client: bytes, h: dict[str, Any]) -> list[int]:
        engines = self._targets(h)
        for e in engines:
            self._send(self.control_sock, e.uuid, {"t": "signal", "sig": h["sig"]})
        return [e.id for e in engines]

    def _q_shutdown(self, client: bytes, h: dict[str, Any]) -> list[int]:
        engines = self._targets(h)
        for e in engines:
            self._send(self.control_sock, e.uuid, {"t": "stop"})
        if h.get("hub"):
            self._stop_at = time.monotonic() + 0.2
        return [e.id for e in engines]

    def _q_resend(self, client: bytes, h: dict[str, Any]) -> dict[str, list[str]]:
        """Send (now, or when done) the replies of tasks, to this client too."""
        sent, later, unknown = [], [], []
        for mid in h["ids"]:
            p = self.pending.get(mid)
            rec = self.records.get(mid)
            if p is not None:
                p.watchers.append(client)
                later.append(mid)
            elif rec is not None and (reply := rec.reply()) is not None:
                self._reply_to(client, (*reply, None))
                sent.append(mid)
            else:
                unknown.append(mid)
        return {"sent": sent, "pending": later, "unknown": unknown}

    def _q_result_status(self, client: bytes, h: dict[str, Any]) -> dict[str, Any]:
        status: dict[str, Any] = {"pending": [], "completed": [], "unknown": []}
        for mid in h["ids"]:
            rec = self.records.get(mid)
            if mid in self.pending:
                status["pending"].append(mid)
            elif rec is None:
                status["unknown"].append(mid)
            else:
                status["completed"].append(mid)
                status[mid] = rec.describe()
        return status

    def _q_purge(self, client: bytes, h: dict[str, Any]) -> int:
        ids = h.get("ids")
        targets = h.get("targets")
        running = [mid for mid in ids or () if mid in self.pending]
        if running:
            raise ValueError(f"task {running[0]} is still pending; wait for it before purging it")
        chosen = [
            rec.msg_id
            for rec in self.records.all()
            if rec.msg_id not in self.pending
            and (ids is None or rec.msg_id in ids)
            and (targets is None or rec.engine_id in targets)
        ]
        for mid in chosen:
            self.records.remove(mid)
        return len(chosen)

    def _q_history(self, client: bytes, h: dict[str, Any]) -> list[str]:
        return [rec.msg_id for rec in self.records.all()]

    def _q_db_query(self, client: bytes, h: dict[str, Any]) -> Frames:
        q, keys = h.get("query") or {}, h.get("keys")
        query.check(q, keys or ())  # before reading any record
        records = self.records.all(full=query.needs_full(q, keys))
        return Frames(query.answer(records, q, keys))

    def _q_resubmit(self, client: bytes, h: dict[str, Any]) -> dict[str, str]:
        """Run finished tasks again from their kept requests, under the ids the client chose.

        All are checked before any is sent: one that cannot be resubmitted fails the call.
        """
        olds, news = h["ids"], h["new"]
        if len(olds) != len(news) or len(set(news)) != len(news):
            raise ValueError("resubmit needs one new, distinct message id per task")
        if any(mid in self.pending for mid in news):
            raise ValueError("resubmit was given a message id already in use")
        originals = [self._resubmittable(mid) for mid in olds]
        now = time.time()
        cname = client.hex()
        for (rec, engine), new in zip(originals, news, strict=True):
            header, payload, buffers = rec.header or {}, rec.payload or [], rec.buffers or []
            self.records.add(
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
            self.records.mark_resubmitted(rec, new)
            if engine is None:
                self._submit_task(
                    self._task_pending(new, client, rec.method, now, header, payload, buffers)
                )
                continue
            self.counts["submitted"] += 1
            routing = {"t": rec.method, "ids": [new], "tg": [engine.id]}
            routing.update({k: header[k] for k in ENGINE_KEYS if k in header})
            p = Pending(new, client, "d", rec.method, now, engine=engine.id, label=rec.label)
            self._send_direct(p, engine, self.session.serialize(routing, payload, buffers))
        return dict(zip(olds, news, strict=True))

    def _resubmittable(self, mid: str) -> tuple[Record, Engine | None]:
        """The record of a task that can run again, and the engine a direct one goes back to;
        raise ValueError saying why it cannot."""
        if mid in self.pending:
            raise ValueError(f"task {mid} is still pending; only finished tasks can be resubmitted")
        rec = self.records.get(mid)
        if rec is None:
            culled = (
                " (or it was culled: the controller keeps its latest --max-records records "
                "within --max-record-bytes)"
                if self.records.culled
                else ""
            )
            raise ValueError(f"no record of task {mid} on the controller{culled}")
        if rec.payload is None or rec.header is None:
            raise ValueError(
                f"the request of task {mid} was not kept (larger than --max-record-bytes): "
                "submit it again"
            )
        if rec.queue == "task":
            return rec, None
        engine = self.engines.by_id.get(rec.engine_id if rec.engine_id is not None else -1)
        if engine is None or engine.state != "up":
            raise ValueError(
                f"engine {rec.engine_id}, which ran direct task {mid}, is gone; a direct task "
                "is resubmitted only to its own engine"
            )
        return rec, engine

    # ---- the loop ----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop soon (safe from a signal handler)."""
        self._stop_at = time.monotonic()

    def run(self) -> None:
        """Serve until stopped by :meth:`stop`, SIGTERM/SIGINT or a hub shutdown."""
        poller = zmq.Poller()
        roles = [
            (self.client_sock, self._handle_client),
            (self.engine_sock, self._handle_engine),
            (self.control_sock, self._handle_control),
            (self.monitor, self._handle_monitor),
        ]
        for sock, _ in [*roles, (self.copies, None)]:
            poller.register(sock, zmq.POLLIN)
        handlers = dict(roles)
        self.device.start()
        self.running = True
        tick = self.config.heartbeat / 2
        next_check = time.monotonic() + tick
        copies_due: float | None = None  # when to read the device's copies that came in
        try:
            while self._stop_at is None or time.monotonic() < self._stop_at:
                now = time.monotonic()
                wait = tick if copies_due is None else max(0.0, copies_due - now)
                for sock, _ in poller.poll(round(wait * 1000)):
                    if sock is self.copies:
                        # Read later, together: one wake-up for many round trips, and none
                        # taking a core from the clients and engines in the middle of one.
                        poller.unregister(self.copies)
                        copies_due = now + COPIES_DELAY
                    else:
                        self._drain(sock, handlers[sock])
                if copies_due is not None and time.monotonic() >= copies_due:
                    self._read_copies()
                    poller.register(self.copies, zmq.POLLIN)
                    copies_due = None
                if self._want_dispatch:
                    self._dispatch()
                if self._outbox:
                    self._flush_replies()
                self.feed.tick(time.monotonic())
                self.records.flush()
                now = time.monotonic()
                if now >= next_check:
                    self.device.nudge()
                    self._check_liveness()
                    if self._waiting:
                        self._check_deadlines()
                    next_check = now + tick
        finally:
            self._event("controller_stopped", {})
            self.records.close()
            self.running = False
            self._close()

    def _close(self) -> None:
        """Close every socket: this thread's, then the context, which ends the device's
        thread (it closes its own sockets)."""
        if not self.device.is_alive():
            self.ctx.destroy(linger=200)
            return
        self.engine_sock.disable_monitor()
        for sock in (self.client_sock, self.engine_sock, self.control_sock, self.monitor):
            sock.close(linger=200)
        self.device.close_hub_side()
        self.ctx.term()
        self.device.join()

    @staticmethod
    def _drain(sock: zmq.Socket, handle: Any, limit: int = 256) -> None:
        protocol.drain(sock, recv_ready(sock), handle, limit)  # the poll found it readable

    def _parse(self, frames: list[Any]) -> Message | None:
        msg = self.session.parse(frames)
        if msg is None:
            log.debug("dropped an unauthenticated or malformed message")
        return msg

    def _handle_client(self, frames: list[Any]) -> None:
        msg = self._parse(frames)
        if msg is not None and isinstance(msg.header.get("c"), bytes):
            self._read_copies()  # what a client asks about includes its direct requests
            self._guard(self._on_client, msg)

    def _handle_engine(self, frames: list[Any]) -> None:
        msg = self._parse(frames)
        if msg is not None and msg.routing:
            self._guard(self._on_engine, msg, frames)

    def _handle_control(self, frames: list[Any]) -> None:
        msg = self._parse(frames)
        if msg is not None and msg.routing:
            self._guard(self._on_control, msg)

    def _handle_copy(self, frames: list[Any]) -> None:
        """A copy of what the direct device passed on: ``[IN or OUT, to, from, *message]``.

        After a message with one frame (garbage) the device took the next message from
        the same side for the rest of it, unswapped, and lost it; the copy is then ``[IN
        or OUT, garbage, its sender, from, to, *message]`` and this loop delivers it."""
        if len(frames) == 4 and bytes(frames[2]) == NUDGE:
            return
        msg = self.copies_joiner.parse(frames[1:])
        if not msg or len(msg.routing) < 2:  # invalid, or a chunk of a large message
            return
        lost = len(msg.routing) > 2
        if lost:
            cut = len(msg.routing) - 2
            msg.frames = msg.frames[cut:]
            msg.routing = [msg.routing[-1], msg.routing[-2]]
        if bytes(frames[0]) == IN:
            self._guard(self._on_direct_copy, msg, lost)
        else:
            self._guard(self._on_reply_copy, msg, lost)

    def _read_copies(self) -> None:
        """Handle every copy the device has passed so far."""
        protocol.drain(self.copies, recv_frames(self.copies, block=False), self._handle_copy)

    def _handle_monitor(self, frames: list[Any]) -> None:
        event = parse_monitor_message([bytes(f.buffer) for f in frames])
        self._on_disconnect(int(event["value"]))

    def _guard(self, handler: Any, *args: Any) -> None:
        """Run a handler; a malformed but authenticated message must not stop the loop."""
        try:
            handler(*args)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.session.dropped += 1
            log.warning("dropped a malformed %s message: %s", args[0].kind, exc)


def _common(engines: list[int]) -> set[int]:
    """Engines every counted dependency ran on (they ran one each, so: all the same one)."""
    return set(engines) if len(set(engines)) <= 1 else set()


def verdict_error(verdict: str) -> tuple[str, str]:
    """The error a task gets when its dependencies cannot be met."""
    if verdict == "invalid":
        return "InvalidDependency", "it depends on a message id the controller does not know"
    return "ImpossibleDependency", "its dependencies failed, or no engine can run it"


def serve(config: ControllerConfig, connection_file: str | None, restore: bool = False) -> None:
    """Run a controller in this process until it is told to stop.

    With ``restore``, come back on the key and ports of the existing connection file,
    so that running engines and clients reconnect by themselves.
    """
    previous = None
    if restore:
        from .. import connection

        if not connection_file:
            raise ValueError("--restore needs the connection file of the controller to restore")
        previous = connection.load(connection_file)
    controller = Controller(config, restore=previous)
    info = controller.connection_info()
    if connection_file:
        from pathlib import Path

        info.write(Path(connection_file))
    log.info(
        "controller %s listening on %s (%s)",
        config.cluster_id,
        controller.urls["client"],
        "CurveZMQ encrypted" if controller.curve_keys else "not encrypted: loopback only",
    )

    def _stop(signum: int, frame: Any) -> None:
        controller.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    controller.run()
