"""The engines' control channel: registration, heartbeats, streamed output, and loss.

An engine registers on its control connection (``reg``: it gets its id and
the heartbeat interval, which grows with the engine count: see heartbeats.py),
then says ``ready`` on its work connection and ``hello`` through the direct
device: it is *up*, and gets work, once both have come, so that either path
reaches it. (A hello again, after its direct connection dropped and came
back, names the direct requests it holds: the others open on it fail, see
par.engine.reconnects.) It then heartbeats (``hb``,
answered ``hbok`` by the control relay, which tells this loop who beat in
batches: see heartbeats.py; an engine the controller does not know is told
to register again, as after a controller restart) and streams its tasks'
output, which goes on to the task's client and to every monitor.

An engine is lost when it says it stops (``unreg``), when its connection
drops for longer than ``disconnect_grace`` (the socket monitor tells; judged
from the control relay's first batch past that, since a stopping engine's
``unreg``, sent before it closes, travels through the relay), when
it misses heartbeats for ``heartbeat_timeout`` (grown in step with the
interval), or when it registers but never becomes ready. What it held fails
with an EngineError, except load-balanced tasks with retries left, which go
back to the queue.

The controller also sends engines commands on this channel, ahead of any
queued work: abort, signal, stop and clear. An engine answers an abort here
with the ids of the tasks it will never run (``aborted``; see replies.py),
and a clear once its namespace is empty (``cleared``; see clearing.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import zmq

from ..messages import (
    CLIENT,
    DATA,
    HEARTBEAT,
    HOST,
    ID,
    IDS,
    INFO,
    KIND,
    LOAD_BALANCED,
    NAME,
    PID,
    QUERY_ID,
)
from ..protocol import Message, Session, send_frames
from .clearing import Clearing
from .config import ControllerConfig
from .engines import Engine, EngineRegistry
from .heartbeats import interval, to_relay
from .ledger import Ledger
from .outbox import Outbox
from .replies import Replies
from .scheduler import TaskScheduler

log = logging.getLogger("par.controller")

# Liveness checks come every half heartbeat: a gap of this many heartbeats between two
# means the controller stopped listening, and that time does not count as engines' silence.
STALL = 2.0


class EngineControl:
    """Engines' membership and liveness, over their control connections."""

    def __init__(
        self,
        config: ControllerConfig,
        engines: EngineRegistry,
        ledger: Ledger,
        tasks: TaskScheduler,
        outbox: Outbox,
        replies: Replies,
        sock: zmq.Socket,
        session: Session,
        read_copies: Callable[[], None],
        room: int = -1,
    ) -> None:
        self.config = config
        self.room = room  # engines the open-file limit leaves room for (-1: no bound)
        self.engines = engines
        self.ledger = ledger
        self.tasks = tasks
        self.outbox = outbox
        self.replies = replies
        self.sock = sock
        self.session = session
        self.read_copies = read_copies  # books what the direct device passed so far
        self._checked = time.monotonic()  # the last liveness check
        self.clearing = Clearing(outbox)
        # The control relay's last batch of heartbeats: when, and whether it had read all
        # engines' messages then (see relay_current).
        self._batch_at, self._relay_caught_up = time.monotonic(), True
        self.heartbeat = config.heartbeat  # engines' interval now: it grows with their count

    def command(self, engine: Engine, header: dict[str, Any]) -> None:
        """Send an engine a control message (abort, signal, stop)."""
        self._send(engine.uuid, header)

    def clear(self, engines: list[Engine], client: bytes, qid: str) -> None:
        """Tell engines to empty their namespaces; the client's query ``qid`` is answered
        once each has (see clearing.py)."""
        self.clearing.start(qid, client, [e.id for e in engines])
        for engine in engines:
            self.command(engine, {KIND: "clear", QUERY_ID: qid})

    def _send(self, ident: bytes, header: dict[str, Any]) -> None:
        send_frames(self.sock, [ident, *self.session.serialize(header)])

    def beats(self, beats: dict[bytes, Any], caught_up: bool) -> None:
        """Engines beat (their identities, each with its latest stats), as the control relay
        says in a batch: they are alive; an engine this controller does not know (it was
        restored, or lost the engine) is told to register again. ``caught_up``: whether the
        relay had read every message waiting (see :meth:`relay_current`)."""
        now = time.monotonic()
        self._batch_at, self._relay_caught_up = now, caught_up
        by_uuid = self.engines.by_uuid
        for ident, stats in beats.items():
            engine = by_uuid.get(ident)
            if engine is None:
                self._send(ident, {KIND: "rereg"})
                continue
            engine.last_seen = now
            if isinstance(stats, dict):
                engine.stats = stats

    @property
    def heartbeat_timeout(self) -> float:
        """Silence after which an engine is lost: the configured timeout, grown in step with
        the interval."""
        cfg = self.config
        return round(cfg.heartbeat_timeout * self.heartbeat / cfg.heartbeat, 3)

    def _pace(self) -> None:
        """Lengthen engines' heartbeat interval if their count calls for it (heartbeats.py):
        new engines hear it at registration, the others in their next ``hbok``."""
        cfg = self.config
        wanted = interval(cfg.heartbeat, len(self.engines.by_id), cfg.heartbeats_per_second)
        if wanted > self.heartbeat:
            self.heartbeat = wanted
            send_frames(self.sock, to_relay(wanted))
            log.info(
                "%d engines: heartbeat every %g s, lost after %g s",
                len(self.engines.by_id),
                wanted,
                self.heartbeat_timeout,
            )

    def relay_current(self) -> bool:
        """Whether the control relay is up to date: its last batch came within ``STALL``
        heartbeats (it sends one every half heartbeat) and it had read every engine's
        message then. Silence is judged only then: while the relay cannot keep up (starved
        of CPU, or stopped), heartbeats wait in its sockets, and the engines' silence
        meanwhile is the relay's own."""
        recent = time.monotonic() - self._batch_at < STALL * self.config.heartbeat
        return recent and self._relay_caught_up

    def on_message(self, msg: Message) -> None:
        """Handle what an engine sent on its control connection."""
        h = msg.header
        kind = msg.kind
        ident = bytes(msg.routing[0])
        engine = self.engines.by_uuid.get(ident)
        if kind == "reg":
            # An engine asks again for each heartbeat of its that a restored controller
            # answered before it knew the engine: it registers once.
            again = ident in self.engines.by_uuid
            engine = self.engines.register(ident, int(h[PID]), str(h[HOST]), h.get(INFO, {}))
            engine.last_seen = time.monotonic()
            if not again:
                log.info("engine %d registering (pid %d on %s)", engine.id, engine.pid, engine.host)
                self.outbox.event("engine_registering", engine.describe())
                self._pace()
                if len(self.engines.by_id) == self.room:
                    log.warning(
                        "%d engines: about as many as the limit on open files lets this "
                        "controller hold (each takes one in each of its processes); raise "
                        "the hard limit (ulimit -Hn) and restart the controller to take more",
                        self.room,
                    )
            self._send(ident, {KIND: "reg_ok", ID: engine.id, HEARTBEAT: self.heartbeat})
        elif kind == "stream":
            self._stream(msg, engine)
        elif kind == "aborted" and engine is not None:
            self.replies.aborted(engine, [str(mid) for mid in h.get(IDS, [])])
        elif kind == "cleared" and engine is not None:
            self.clearing.cleared(str(h.get(QUERY_ID)), engine.id)
        elif kind == "unreg" and engine is not None:
            self.lose(engine, "stopped", "stopped")

    def _stream(self, msg: Message, engine: Engine | None) -> None:
        """Pass a task's streamed output on to its client and the monitors; keep its text."""
        self.read_copies()  # the task's request and record, if it came on the direct path
        h = msg.header
        mid = h.get(ID, "")
        p = self.ledger.pending.get(mid)
        body = msg.body()
        # The engine names the task's client: a copy of a direct request may reach
        # this loop after the output the task streams.
        client = p.client if p is not None else h.get(CLIENT)
        if isinstance(client, bytes):
            self.outbox.forward(client, body)
        if h.get(NAME) in ("stdout", "stderr"):
            text = str(h.get(DATA, ""))
            self.ledger.records.add_output(str(mid), h[NAME], text)
            if engine is not None:
                self.ledger.feed.output(engine.id, h[NAME], text)

    def ready(self, engine: Engine, last: Any) -> None:
        """An engine said ``ready`` on its work connection (``last``: the message's last
        frame, which tells the connection's file descriptor)."""
        fd = last.get(zmq.SRCFD) if hasattr(last, "get") else None
        if isinstance(fd, int) and fd >= 0:
            self.engines.set_fd(engine, fd)
        engine.disconnected_at = None
        engine.ready = True
        self._up(engine)

    def hello(self, engine: Engine) -> None:
        """An engine's hello came through the direct device, which reaches it from now on."""
        engine.hello = True
        self._up(engine)

    def direct_reconnected(self, engine: Engine, held: Any) -> None:
        """An engine said hello again: its direct connection dropped and came back (see
        par.engine.reconnects). The direct requests to it that it does not hold, and whose
        replies came before this hello, were lost on the way there or back: they fail."""
        kept = set(held)
        text = (
            f"engine {engine.id}'s direct connection dropped and came back while this "
            "request or its reply was on it: the task may or may not have run"
        )
        log.warning("engine %d: its direct connection dropped and came back", engine.id)
        for mid, p in list(engine.outstanding.items()):
            if p.device and mid not in kept:
                del engine.outstanding[mid]
                self.ledger.pending.pop(mid, None)
                self.ledger.fail(p, "ControllerLost", text, engine.id)
        self.tasks.freed(engine)

    def _up(self, engine: Engine) -> None:
        """An engine is up once both the controller and the direct device reach it."""
        if engine.state != "up" and engine.ready and engine.hello:
            engine.state = "up"
            # One line an engine is enough (its registering): each costs the loop tens of µs.
            log.debug("engine %d up", engine.id)
            self.outbox.event("engine_up", engine.describe())
        self.tasks.freed(engine)

    def lose(self, engine: Engine, how: str, reason: str) -> None:
        """Unregister an engine and fail what it held."""
        self.read_copies()  # what it answered on the direct path is not failed
        self.engines.remove(engine)
        self.tasks.forget(engine)
        self.clearing.lost(engine.id)
        log.warning("engine %d %s: %s", engine.id, how, reason)
        held = list(engine.outstanding.items())
        engine.outstanding.clear()
        engine.state = how
        # The event goes first: a client that sees the error already sees the engine gone.
        self.outbox.event("engine_" + how, {**engine.describe(), "reason": reason})
        text = f"engine {engine.id} (pid {engine.pid} on {engine.host}) {reason}"
        for mid, p in held:
            if p.queue == LOAD_BALANCED and p.retries > 0:
                p.retries -= 1
                p.engine = None
                self.tasks.submit(p)
                continue
            self.ledger.pending.pop(mid, None)
            self.ledger.fail(p, "EngineError", f"{text} while holding task {mid}", engine.id)

    def device_lost(self, text: str) -> None:
        """Fail the direct requests the direct device passed and no reply came back for,
        with ``text``: its relay ended, and what it held went with it. The copies it sent
        before are booked first. A request it took but never copied here is its client's
        to fail (on the ``relay_restarted`` event, see par.client.io)."""
        self.read_copies()
        for mid, p in list(self.ledger.pending.items()):
            if not p.device:
                continue
            del self.ledger.pending[mid]
            engine = self.engines.by_id.get(p.engine) if p.engine is not None else None
            if engine is not None:
                engine.outstanding.pop(mid, None)
                self.tasks.freed(engine)
            self.ledger.fail(p, "ControllerLost", text, p.engine)

    def relay_restarted(self) -> None:
        """The control relay runs again: it beats at the controller's default until told
        the interval the engine count called for."""
        if self.heartbeat != self.config.heartbeat:
            send_frames(self.sock, to_relay(self.heartbeat))

    def disconnected(self, fd: int) -> None:
        """The connection on file descriptor ``fd`` dropped: its engine has a grace period
        to come back."""
        engine = self.engines.by_fd.get(fd)
        if engine is not None and engine.disconnected_at is None:
            engine.disconnected_at = time.monotonic()

    def check(self) -> None:
        """Lose the engines that went quiet, dropped their connection, or never got ready."""
        now = time.monotonic()
        cfg = self.config
        gap, self._checked = now - self._checked, now
        if gap > STALL * cfg.heartbeat:
            # The controller itself could not listen (stopped, or starved of CPU): the
            # engines' silence meanwhile is its own, and their heartbeats may still be on
            # their way in. Engines are judged on the time the controller was listening.
            for engine in self.engines.by_id.values():
                engine.last_seen = min(engine.last_seen + gap, now)
        timeout = self.heartbeat_timeout
        for engine in list(self.engines.by_id.values()):
            silent = now - engine.last_seen
            # An engine that stops says so (unreg) before its connections close, but the
            # goodbye comes through the control relay: a drop counts once the relay has
            # spoken since, or a relay held up (starved of CPU) would make it a loss.
            dropped = engine.disconnected_at
            if dropped is not None and self._batch_at - dropped > cfg.disconnect_grace:
                why = "closed its connection (the process exited or was killed)"
                self.lose(engine, "lost", why)
            elif silent > timeout:
                self.lose(engine, "lost", f"missed heartbeats for {silent:.1f} s")
            elif engine.state == "registering" and silent > cfg.registration_timeout:
                self.lose(engine, "lost", "registered but never became ready")
