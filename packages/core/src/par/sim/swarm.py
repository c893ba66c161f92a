"""One process's simulated engines and the loop that drives them.

Each :class:`SimEngine` holds the sockets of a real engine (see
:mod:`par.engine.app` and :mod:`par.engine.control`), under one routing
identity: a control DEALER that registers, heartbeats, hears stop and answers
clear (a simulated engine has no namespace to empty); a work
DEALER that says ``ready`` and takes load-balanced requests (and the direct
requests the hub fans out); a direct DEALER that says ``hello`` through the
direct device and takes clients' direct requests, whose replies go back the
same way. Requests are split into tasks and replies batched by the real
engine's own code (:func:`par.engine.app.tasks_of`, its ``Outbox``).

:class:`Swarm` drives every engine of the process from one thread. The
sockets' ``ZMQ_FD`` descriptors sit in an epoll selector, so a turn of the
loop costs what arrived rather than a poll of every socket. A ``ZMQ_FD``
signals only a change, so a socket is read until it is empty, and read again
after a send on it (a send can take in the notice of a message that came).
Every engine beats at the controller's interval, which grows with the engine
count (see :mod:`par.controller.heartbeats`): the heartbeats due wait in a
heap, served between messages whenever a turn's reading runs long, and
replies held back by ``delay`` in another, by the time their task would
finish (an engine's tasks run one after another).

Abort and signal requests are heard and ignored: a simulated task has nothing
to interrupt. Commands come on stdin, one a line, and each is answered by one
JSON line on stdout (see :data:`COMMANDS`); the first line on stdout, before
any command, says when the first registration went out.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import logging
import os
import pickle
import resource
import selectors
import socket
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import zmq

from .. import openfiles, serialize
from ..connection import ConnectionInfo
from ..engine.app import Outbox, Reply, Task, tasks_of
from ..engine.control import ASK_AFTER, CONTROLLER_TIMEOUT
from ..messages import ASK
from ..protocol import Message, Session, recv_frames, send_frames

log = logging.getLogger("par.sim")

REGISTER_AGAIN = 2.0  # seconds before an unanswered registration is sent again, as engines do
# Silence after which a heartbeat asks for an answer: an engine's under its default
# --controller-timeout
ASK_WHEN_SILENT = CONTROLLER_TIMEOUT / ASK_AFTER
START_BATCH = 100  # engines started per turn of the loop, so that answers are read meanwhile
MAX_WAIT = 0.5  # the loop's longest sleep, seconds
TIMER_SLICE = 0.02  # seconds of reading after which the timers due are served first
FILES_PER_ENGINE = 6  # three sockets (each with a descriptor of its own) and their connections
COMMANDS = {
    "status": '{"registered": [ids], "late": s, "resent": n}: the engines registered and '
    "alive, the most a heartbeat went out after it was due, the registrations sent again",
    "kill K": '{"ids": [...]}: K engines close their connections without a word, as killed '
    "processes do",
    "hang K": '{"ids": [...]}: K engines fall silent with their connections open, as hung '
    "processes do",
    "stop": '{"stopping": true}: every engine unregisters, and the process exits (as it does '
    "at the end of stdin)",
}


@functools.lru_cache(maxsize=64)
def result_of(count: int | None) -> bytes:
    """The pickled result of a no-op task (None), or of a map's chunk of ``count`` calls."""
    return serialize.dumps(None if count is None else [None] * count)[0]


class SimEngine:
    """One simulated engine: a real engine's three sockets and where it stands."""

    __slots__ = (
        "asked",
        "busy_until",
        "control",
        "direct",
        "executed",
        "heard",
        "id",
        "ident",
        "next_beat",
        "outbox",
        "previous_id",
        "sockets",
        "state",
        "work",
    )

    def __init__(self, ident: bytes, control: zmq.Socket, session: Session) -> None:
        self.ident = ident
        self.control = control
        self.work: zmq.Socket | None = None
        self.direct: zmq.Socket | None = None
        self.sockets: list[tuple[zmq.Socket, Handler]] = []  # each with what reads it
        self.outbox = Outbox(session)
        self.id: int | None = None
        self.previous_id: int | None = None
        self.state = "registering"  # then "up"; "hung" or "gone" for good
        self.asked = 0.0  # monotonic time it last sent its registration
        self.next_beat = 0.0  # monotonic time of its next heartbeat
        self.heard = 0.0  # monotonic time its control connection last heard the controller
        self.busy_until = 0.0  # wall time its last task finishes
        self.executed = 0  # execute requests that were not silent, as IPython counts

    def flush(self) -> None:
        """Send the replies its outbox holds."""
        assert self.work is not None and self.direct is not None  # up: both connected
        self.outbox.flush(self.work, self.direct)

    @property
    def live(self) -> bool:
        """Whether it still reads and answers."""
        return self.state in ("registering", "up")


Handler = Callable[[SimEngine, Message], None]
Watch = tuple[SimEngine, zmq.Socket, Handler]  # a socket, whose it is and what reads it


def check_files(n: int) -> None:
    """Raise the soft limit on open files as far as allowed; ValueError if ``n`` engines
    would still not fit under it."""
    limit = openfiles.raise_limit()
    need = FILES_PER_ENGINE * n + openfiles.RESERVE
    if limit != resource.RLIM_INFINITY and need > limit:
        raise ValueError(
            f"{n} simulated engines need about {need} open files, more than this process's "
            f"limit of {limit}: spread them over more processes"
        )


class Swarm:
    """``n`` simulated engines of one controller, driven by :meth:`run`."""

    def __init__(self, info: ConnectionInfo, n: int, delay: float = 0.0) -> None:
        if n < 1:
            raise ValueError(f"the number of engines must be 1 or more, not {n}")
        if delay < 0:
            raise ValueError(f"the delay must be 0 or more seconds, not {delay}")
        check_files(n)
        self.info = info
        self.n = n
        self.delay = delay
        self.session = Session(info.key_bytes)
        self.ctx = zmq.Context()
        self.ctx.max_sockets = 3 * n + 16
        self.selector = selectors.DefaultSelector()
        self.engines: list[SimEngine] = []
        self.unanswered: deque[tuple[float, SimEngine]] = deque()  # registrations, in order
        self.beats: list[tuple[float, int, SimEngine]] = []  # heartbeats due, a heap
        self.heartbeat = 1.0  # seconds; the controller says at registration
        self.late = 0.0  # the most a heartbeat went out after it was due, seconds
        self.timed = 0.0  # when the timers were last served (monotonic)
        self.resent = 0  # registrations sent again, unanswered for REGISTER_AGAIN
        self.held: list[tuple[float, int, SimEngine, Reply, bytes | None]] = []  # heap by due
        self.order = itertools.count()  # ties in the heap
        self.unsent: set[SimEngine] = set()  # engines whose outbox holds replies
        self.watched: dict[zmq.Socket, Watch] = {}  # each socket's engine and reader
        self.touched: set[zmq.Socket] = set()  # sockets sent on: read them again
        stats = {"cpu": 0.0, "rss": 0, "task": None, "task_started": None}
        # the same for every engine: the socket says who sends it
        self.beat = self.session.serialize({"t": "hb", "stats": stats})
        self.asking = self.session.serialize({"t": "hb", "stats": stats, ASK: 1})
        self.info_sent = {"python": sys.executable, "cwd": os.getcwd(), "simulated": True}
        self.host = socket.gethostname()
        self.commands = b""
        self.running = True

    # ---- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Start the engines and serve them until ``stop`` or the end of stdin."""
        stdin = sys.stdin.fileno()
        self.selector.register(stdin, selectors.EVENT_READ, None)
        try:
            while self.running:
                starting = len(self.engines) < self.n
                if starting:
                    self._start_some()
                wait = 0.0 if starting or self.touched or self.unsent else self._wait()
                for key, _ in self.selector.select(wait):
                    if key.data is None:
                        self._read_commands(stdin)
                    else:
                        self._read(*key.data)
                self._timers()
                self._settle()
        finally:
            self._close()

    def _wait(self) -> float:
        """Seconds until the next timer is due (at most ``MAX_WAIT``)."""
        now, wall = time.monotonic(), time.time()
        due = [MAX_WAIT]
        if self.beats:
            due.append(self.beats[0][0] - now)
        if self.unanswered:
            due.append(self.unanswered[0][0] + REGISTER_AGAIN - now)
        if self.held:
            due.append(self.held[0][0] - wall)
        return max(0.0, min(due))

    def _start_some(self) -> None:
        """Start the next few engines; the first says when registrations began."""
        first = not self.engines
        when = time.time()
        for _ in range(min(START_BATCH, self.n - len(self.engines))):
            ident = uuid.uuid4().bytes
            control = self._dealer(ident, self.info.control_url)
            engine = SimEngine(ident, control, self.session)
            self._watch(engine, control, self._on_control)
            self.engines.append(engine)
            self._register(engine)
        if first:
            self._answer({"started": when, "pid": os.getpid()})

    def _timers(self) -> None:
        """Send the heartbeats and registrations due, and the held replies whose time came."""
        self.timed = now = time.monotonic()
        while self.beats and self.beats[0][0] <= now:
            due, _, engine = heapq.heappop(self.beats)
            if engine.state != "up" or engine.next_beat != due:
                continue  # gone, hung, or registered again since: a later entry counts
            silent = now - engine.heard > ASK_WHEN_SILENT
            self._send(engine.control, self.asking if silent else self.beat)
            self.late = max(self.late, now - due)
            self._beat_at(engine, now + self.heartbeat)
        while self.unanswered and self.unanswered[0][0] + REGISTER_AGAIN <= now:
            asked, engine = self.unanswered.popleft()
            if engine.state == "registering" and engine.asked == asked:  # still unanswered
                self.resent += 1
                self._register(engine)
        wall = time.time()
        while self.held and self.held[0][0] <= wall:
            _, _, engine, reply, to = heapq.heappop(self.held)
            if engine.state == "up":
                engine.outbox.add(reply, to)
                self.unsent.add(engine)

    def _settle(self) -> None:
        """Send the replies made this turn, then read again every socket sent on."""
        for engine in self.unsent:
            if engine.state == "up":
                engine.flush()
                assert engine.work is not None and engine.direct is not None
                self.touched.update((engine.work, engine.direct))
        self.unsent = set()
        touched, self.touched = self.touched, set()
        for sock in touched:
            self._read(*self.watched[sock])

    # ---- sockets ---------------------------------------------------------------------------

    def _dealer(self, ident: bytes, url: str) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, ident)
        sock.setsockopt(zmq.LINGER, 1000)
        self.info.secure(sock)
        sock.connect(url)
        return sock

    def _watch(self, engine: SimEngine, sock: zmq.Socket, handle: Handler) -> None:
        engine.sockets.append((sock, handle))
        watch = self.watched[sock] = (engine, sock, handle)
        self.selector.register(sock, selectors.EVENT_READ, watch)

    def _unwatch(self, engine: SimEngine) -> None:
        for sock, _ in engine.sockets:
            self.selector.unregister(sock)

    def _send(self, sock: zmq.Socket, frames: list[Any]) -> None:
        send_frames(sock, frames)
        self.touched.add(sock)

    def _read(self, engine: SimEngine, sock: zmq.Socket, handle: Handler) -> None:
        """Handle every message waiting on one of an engine's sockets; heartbeats due
        meanwhile go out between messages, as a real engine's control thread sends them
        while its main thread works."""
        while engine.live:
            frames = recv_frames(sock, block=False)
            if frames is None:
                return
            msg = self.session.parse(frames)
            if msg is None:
                log.warning("dropped an unauthenticated or malformed message")
            else:
                handle(engine, msg)
            if time.monotonic() - self.timed > TIMER_SLICE:
                self._timers()

    # ---- what engines say and hear ---------------------------------------------------------

    def _register(self, engine: SimEngine) -> None:
        header = {
            "t": "reg",
            "pid": os.getpid(),
            "host": self.host,
            "info": {**self.info_sent, "previous_id": engine.previous_id},
        }
        self._send(engine.control, self.session.serialize(header))
        engine.asked = time.monotonic()
        self.unanswered.append((engine.asked, engine))

    def _on_control(self, engine: SimEngine, msg: Message) -> None:
        kind = msg.kind
        engine.heard = time.monotonic()
        if kind == "reg_ok" and engine.state == "registering":
            engine.id = int(msg.header["id"])
            self.heartbeat = float(msg.header.get("hb", self.heartbeat))
            self._ready(engine)
        elif kind == "hbok":  # the interval grows with the engine count (a late answer's
            # may be older than the last registration's: the longer counts)
            self.heartbeat = max(self.heartbeat, float(msg.header.get("hb", 0.0)))
        elif kind == "rereg":  # the controller restarted and does not know it: register again
            if engine.id is not None:
                engine.previous_id = engine.id
            engine.state = "registering"
            self._register(engine)
        elif kind == "stop":
            self._stop(engine)
        elif kind == "clear":  # nothing to empty: say it is done, as an engine does
            reply = {"t": "cleared", "qid": msg.header.get("qid")}
            self._send(engine.control, self.session.serialize(reply))

    def _beat_at(self, engine: SimEngine, due: float) -> None:
        """Schedule an engine's next heartbeat (an earlier entry of its no longer counts)."""
        engine.next_beat = due
        heapq.heappush(self.beats, (due, next(self.order), engine))

    def _ready(self, engine: SimEngine) -> None:
        """Connect the work and direct sockets (once) and say so on both, as an engine
        does after each registration; heartbeats start."""
        if engine.work is None:
            engine.work = self._dealer(engine.ident, self.info.engine_url)
            engine.direct = self._dealer(engine.ident, self.info.engine_direct_url)
            self._watch(engine, engine.work, self._on_work)
            self._watch(engine, engine.direct, self._on_direct)
        assert engine.direct is not None
        engine.state = "up"
        self._send(engine.work, self.session.serialize({"t": "ready"}))
        self._send(engine.direct, [b"", *self.session.serialize({"t": "hello"})])
        self._beat_at(engine, time.monotonic() + self.heartbeat)

    def _on_work(self, engine: SimEngine, msg: Message) -> None:
        self._request(engine, msg, None)

    def _on_direct(self, engine: SimEngine, msg: Message) -> None:
        client = msg.header.get("c")
        if isinstance(client, bytes):
            self._request(engine, msg, client)
        else:
            log.warning("dropped a direct request that names no client")

    def _request(self, engine: SimEngine, msg: Message, to: bytes | None) -> None:
        """Answer each task of a request as a no-op that took ``delay`` seconds."""
        if msg.kind not in ("apply", "execute") or engine.state != "up":
            return
        try:
            tasks = [(*task, self._result(task)) for task in tasks_of(msg, engine.id, to)]
        except (KeyError, TypeError, ValueError, IndexError, pickle.UnpicklingError) as exc:
            log.warning("dropped a malformed request: %s", exc)
            return
        now = time.time()
        for kind, mid, h, _, _, dest, result in tasks:
            started = max(now, engine.busy_until)
            engine.busy_until = done = started + self.delay
            header = {"t": "reply", "id": mid, "e": engine.id, "m": kind, "ts": started}
            header.update(st="ok", tc=done)
            if kind == "execute" and h.get("x"):
                engine.executed += 1
                header["ec"] = engine.executed
            reply: Reply = (header, [result], [])
            if self.delay:
                heapq.heappush(self.held, (done, next(self.order), engine, reply, dest))
            else:
                engine.outbox.add(reply, dest)
                self.unsent.add(engine)

    @staticmethod
    def _result(task: Task) -> bytes:
        """A task's result: None, or for a chunk of a map (its arguments unpickled to count
        them) a None for each call."""
        _, _, h, payload, buffers, _ = task
        if not h.get("mp"):
            return result_of(None)
        args, _ = serialize.loads(payload[1], buffers)
        return result_of(min((len(a) for a in args), default=0))

    # ---- ends --------------------------------------------------------------------------------

    def _stop(self, engine: SimEngine) -> None:
        """Unregister (if registered) and close, as an engine told to stop does."""
        if engine.state == "up":
            send_frames(engine.control, self.session.serialize({"t": "unreg"}))
        self._end(engine, "gone", linger=1000)

    def _end(self, engine: SimEngine, state: str, linger: int | None) -> None:
        """Stop reading an engine's sockets; close them unless ``linger`` is None."""
        if engine.live:
            self._unwatch(engine)
        engine.state = state
        if linger is not None:
            for sock, _ in engine.sockets:
                sock.close(linger=linger)

    def _close(self) -> None:
        for engine in self.engines:
            if engine.live:
                self._stop(engine)
            elif engine.state == "hung":
                self._end(engine, "gone", linger=0)
        self.selector.close()
        self.ctx.term()

    # ---- commands ----------------------------------------------------------------------------

    def _read_commands(self, fd: int) -> None:
        data = os.read(fd, 65536)
        if not data:  # whoever started us is gone
            self.running = False
            return
        self.commands += data
        *lines, self.commands = self.commands.split(b"\n")
        for line in lines:
            if line.strip():
                self._answer(self.command(line.decode(errors="replace")))

    def command(self, line: str) -> dict[str, Any]:
        """Carry out one command line; return its answer."""
        words = line.split()
        name, args = words[0], words[1:]
        if name == "status" and not args:
            ids = sorted(e.id for e in self.engines if e.state == "up" and e.id is not None)
            return {"registered": ids, "late": self.late, "resent": self.resent}
        if name in ("kill", "hang") and len(args) == 1 and args[0].isdigit():
            up = [e for e in self.engines if e.state == "up"]
            chosen = up[len(up) - int(args[0]) :] if int(args[0]) else []
            for engine in chosen:  # killed: closed at once; hung: open, never read again
                if name == "kill":
                    self._end(engine, "gone", linger=0)
                else:
                    self._end(engine, "hung", linger=None)
            return {"ids": [e.id for e in chosen]}
        if name == "stop" and not args:
            self.running = False
            return {"stopping": True}
        return {"error": f"unknown command {line.strip()!r}: use one of {', '.join(COMMANDS)}"}

    @staticmethod
    def _answer(answer: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
