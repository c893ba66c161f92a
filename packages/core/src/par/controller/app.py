"""The controller process: one poll loop that hands each message to the piece for it.

Requests and replies are forwarded frame for frame: the controller reads
only their compact header and never unpickles a payload. The direct path
routes a request to its target engines in the device's relay process (mux.py); the
hub keeps its books from the copies the device passes it. Everything else
runs in this loop, one piece per role, wired together here::

    sockets.py       the sockets, the relays holding engines' control and direct ones
    relays.py        those relays: child processes passing traffic to this loop over ipc
    heartbeats.py    the control relay's loop: heartbeats answered there, batched here
    requests.py      booking clients' requests; sending them to engines
    replies.py       accounting for engines' replies; passing them on
    ledger.py        requests pending, their records, the counts
    dependencies.py  load-balanced tasks waiting for others
    scheduler.py     which engine runs the next load-balanced task
    control.py       engines' registration, heartbeats, streamed output, loss
    operations.py    what clients ask with queries (a table of operations)
    outbox.py        what clients are sent: a loop pass's replies together
    delivery.py      sending on the client socket; what a slow client cannot take waits
    feed.py          what monitors hear: per-second sums of finished work, errors, output
    engines.py       the engines registered, and the requests each holds
    records.py       task records, bounded (query.py answers db_query from them)
    usage.py         the memory and CPU of the hub and its relays, for status
    owner.py         the process whose end stops the cluster (``--owner``)
    config.py        the controller's settings

Each pass of the loop handles what came on each readable socket (a bounded
number per socket, so none starves the others; of clients' load-balanced tasks,
a slice, so engines start on a flood of them while the rest is read), then the device's copies
(gathered for ``COPIES_DELAY``: one wake-up for many round trips), then
dispatches assigned tasks, sends the pass's replies and the monitors' feed, and writes
the records; every half heartbeat, when the control relay's batch of beats comes
(or, should it be late, half a heartbeat later: one wake-up, not two), it reads the
heartbeats waiting, checks engines' liveness (once none waits), the
dependencies' deadlines and whether the cluster's owner still runs.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import parse_monitor_message

from .. import connection, openfiles, protocol
from ..connection import ConnectionInfo
from ..curve import server_keypair, wanted
from ..errors import ClusterError
from ..messages import CLIENT, HELD, ID, IDS, REPLY_HEADERS
from ..protocol import Message, Session, recv_frames, recv_ready, waiting
from . import heartbeats, operations, relays
from .config import ControllerConfig
from .control import EngineControl
from .dependencies import Dependencies
from .engines import EngineRegistry
from .feed import Feed
from .ledger import Ledger
from .mux import IN, SYNC, mark_of, nudge_every
from .outbox import Outbox
from .owner import Owner
from .records import RecordStore, SQLiteRecordStore
from .replies import Replies
from .requests import Requests
from .scheduler import PREFETCH_MAX, TaskScheduler
from .sockets import Sockets
from .usage import Usage

__all__ = ["Controller", "ControllerConfig", "serve"]

log = logging.getLogger("par.controller")

COPIES_DELAY = 0.005  # seconds the direct device's copies gather before the hub reads them
MIN_MESSAGE_BYTES = protocol.MAX_HEADER_BYTES  # the least --max-message-bytes can be
SLOW_RETRY = 0.05  # seconds between tries to send what waits for slow clients
SYNC_WAIT = 1.0  # seconds a query waits at most for the direct device's copies to catch up
QUIET_NUDGES = 2  # the direct device's nudges missed before a query no longer waits for it
# Load-balanced tasks a pass books at most before it dispatches: what fills every engine's
# room (the scheduler's runs of tiny tasks are as long as the queue is deep), at least this.
BOOK_PER_PASS = 512
CATCH_UP = 4096  # control messages read at most before engines' silence is judged
# A relay that ends this many times within RELAY_WINDOW seconds is not started again: the
# controller stops, saying why, rather than start it for ever (out of memory each time).
RELAY_ENDS = 3
RELAY_WINDOW = 60.0
# Seconds engines get to connect to a direct relay started again (and a second more for
# each 2,000 of them: a storm of handshakes), before what it may have dropped is failed.
RECONNECT_GRACE = 1.0
RECONNECTS_PER_SECOND = 2000
# Allocations between young collections (Python's default: 700). The hub's heap holds every
# engine and record; at 700, a map of 100,000 tasks on 10,000 engines ran 8 full collections
# over it, a quarter of the hub's CPU. A message's objects die young either way.
GC_YOUNG = 20_000


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
        self.engines = EngineRegistry()
        self.tasks = TaskScheduler(config.scheme, config.hwm)
        records = (
            SQLiteRecordStore(config.db_path, config.max_records, config.max_record_bytes)
            if config.db == "sqlite"
            else RecordStore(config.max_records, config.max_record_bytes)
        )
        self.started = time.time()
        self.running = False
        self._stop_at: float | None = None
        if config.max_message_bytes < MIN_MESSAGE_BYTES:
            raise ValueError(
                f"--max-message-bytes {config.max_message_bytes} is too small: a message's "
                f"header alone may take {MIN_MESSAGE_BYTES} bytes; give at least that"
            )
        self.curve_keys = server_keypair() if wanted(config.curve, config.ip) else None
        if restore is not None and restore.curve_serverkey:
            raise ValueError(
                "cannot restore a Curve-encrypted controller: its secret key was never saved"
            )
        self.owner = Owner(config.owner) if config.owner else None
        # Before the relays start, which inherit it: an engine takes a file in each process.
        self.engine_room = openfiles.engine_room(openfiles.raise_limit())
        self.nudge_every = nudge_every(config.relay_timeout)  # the direct device's (mux.py)
        self.sockets = Sockets(
            config.ip,
            self.curve_keys,
            restore.to_dict() if restore else {},
            config.max_message_bytes,
            config.client_hwm,
            self.key,
            config.heartbeat / 2,
            self.nudge_every,
        )
        self.urls = self.sockets.urls
        self.usage = Usage(self._pids())
        self._relay_ends: dict[str, deque[float]] = {}  # when each relay kind ended lately
        self._device_settles: tuple[float, dict[str, Any]] | None = None  # see _watch_relays
        # When each relay last said it runs, and when the loop last looked (see _silent)
        self._relay_heard = dict.fromkeys(relays.KINDS, time.monotonic())
        self._beats_came = False  # a batch of heartbeats came: the checks are due (see run)
        self._watched = time.monotonic()
        # Large messages come in chunks; their copies are kept as they came, for the records.
        self.copies_joiner = protocol.Assembler(self.session, keep_chunks=True)

        self.outbox = Outbox(self.sockets.client, self.session, records)
        self.feed = Feed(lambda data, to: self.outbox.event("activity", data, to=to))
        self.ledger = Ledger(records, self.outbox, self.feed)
        self.dependencies = Dependencies(self.ledger, self.tasks)
        self.replies = Replies(
            self.ledger, self.engines, self.tasks, self.dependencies, self.outbox
        )
        self.requests = Requests(
            self.ledger,
            self.engines,
            self.tasks,
            self.dependencies,
            self.replies,
            self.sockets.engine,
            self.session,
        )
        self.control = EngineControl(
            config,
            self.engines,
            self.ledger,
            self.tasks,
            self.outbox,
            self.replies,
            self.sockets.control,
            self.session,
            self.read_copies,
            self.engine_room,
        )

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
            max_message_bytes=self.config.max_message_bytes,
            engine_room=self.engine_room,
        )

    # ---- the loop ----------------------------------------------------------------------------

    def stop(self, after: float = 0.0) -> None:
        """Ask the loop to stop ``after`` seconds from now (safe from a signal handler)."""
        self._stop_at = time.monotonic() + after

    def run(self) -> None:
        """Serve until stopped by :meth:`stop`, SIGTERM/SIGINT or a hub shutdown."""
        sockets = self.sockets
        copies = sockets.copies
        poller = zmq.Poller()
        readers: dict[zmq.Socket, Callable[[zmq.Socket], None]] = {
            sockets.client: self._read_requests,
            sockets.engine: lambda sock: self._drain(sock, self._handle_engine),
            sockets.control: lambda sock: self._drain(sock, self._handle_control),
            sockets.monitor: lambda sock: self._drain(sock, self._handle_monitor),
        }
        for sock in [*readers, copies]:
            poller.register(sock, zmq.POLLIN)
        self.running = True
        tick = self.config.heartbeat / 2
        next_check = time.monotonic() + tick
        copies_due: float | None = None  # when to read the device's copies that came in
        tasks, dependencies, delivery = self.tasks, self.dependencies, self.outbox.delivery
        try:
            while self._stop_at is None or time.monotonic() < self._stop_at:
                now = time.monotonic()
                wait = tick if copies_due is None else max(0.0, copies_due - now)
                if delivery.held:  # try the slow clients again soon
                    wait = min(wait, SLOW_RETRY)
                for sock, _ in poller.poll(round(wait * 1000)):
                    if sock is copies:
                        # Read later, together: one wake-up for many round trips, and none
                        # taking a core from the clients and engines in the middle of one.
                        poller.unregister(copies)
                        copies_due = now + COPIES_DELAY
                    else:
                        readers[sock](sock)
                if copies_due is not None and time.monotonic() >= copies_due:
                    self.read_copies()
                    poller.register(copies, zmq.POLLIN)
                    copies_due = None
                if delivery.held:
                    for client in delivery.flush():
                        tasks.release(client)
                if tasks.due:
                    self.requests.dispatch()
                self.outbox.flush()
                self.feed.tick(time.monotonic())
                self.ledger.records.flush()
                now = time.monotonic()
                if now >= next_check or self._beats_came:
                    if self._stop_at is None:  # a stop that reaches every process ends relays
                        self._watch_relays(now)
                        if self.owner is not None and self.owner.gone():
                            self._owner_ended(self.owner.pid)
                    if self._read_heartbeats():
                        self.control.check()
                    if dependencies.waiting:
                        dependencies.check_deadlines()
                    if tasks.stranded:
                        self.replies.expire()
                    next_check = now + (1.5 * tick if self._beats_came else tick)
                    self._beats_came = False
        finally:
            self.outbox.event("controller_stopped", {})
            self.ledger.records.close()
            self.running = False
            sockets.close()

    def _owner_ended(self, pid: int) -> None:
        """The process that started the cluster ended without stopping it (owner.py): stop
        the engines and this controller, as ``par stop`` would."""
        log.warning(
            "the process that started this cluster (pid %d) ended without stopping it: "
            "stopping its engines and this controller",
            pid,
        )
        # every engine, those still registering too (up is what a client's shutdown means)
        operations.shutdown(self, b"", {"hub": True, "targets": list(self.engines.by_id)})

    def _pids(self) -> list[int]:
        """The controller's processes: the hub, then its relays."""
        return [os.getpid(), *(relay.proc.pid for relay in self.sockets.relays.values())]

    def _watch_relays(self, now: float) -> None:
        """Start a relay again whose process ended (killed, or out of memory), or that said
        nothing for too long (``_silent``), on the same ports: engines and clients
        reconnect by themselves. Until then engines' control
        messages or direct requests would go nowhere, and nothing would say why.

        Clients hear ``relay_restarted``. A direct relay's comes once engines had time to
        connect to the new one (``RECONNECT_GRACE``): until an engine has, the device
        drops what is sent to it, unseen. So every direct request that went through the
        device and has no reply then fails, here and (what never reached this loop) in its
        client: the ended relay may have held it or its reply, or dropped it since."""
        if self._device_settles is not None and now >= self._device_settles[0]:
            event = self._device_settles[1]
            self._device_settles = None
            self.control.device_lost(event["error"])
            self.outbox.event("relay_restarted", event)
        if now - self._watched > self.config.relay_timeout / 2:
            # This loop was held up or stopped (Ctrl-Z stops the relays with it): what it
            # did not watch is no relay's silence.
            self._relay_heard = dict.fromkeys(relays.KINDS, now)
        self._watched = now
        for kind, relay in list(self.sockets.relays.items()):
            how = relay.ended() or self._silent(kind, relay, now)
            if how is None:
                continue
            why = f"the controller's {kind} relay (pid {relay.proc.pid}) {how}"
            ends = self._relay_ends.setdefault(kind, deque(maxlen=RELAY_ENDS))
            ends.append(now)
            if len(ends) == RELAY_ENDS and ends[-1] - ends[0] < RELAY_WINDOW:
                log.error(
                    "%s: it ended %d times within %.0f s, so the controller stops rather "
                    "than start it again (`par start --restore` brings the cluster back)",
                    why,
                    RELAY_ENDS,
                    RELAY_WINDOW,
                )
                self.stop()
                return
            log.warning("%s; starting it again on the same ports", why)
            try:
                self.sockets.restart(kind)
            except OSError as exc:  # it ended starting: the next look counts that end too
                log.warning("%s, and its new process did not start: %s", why, exc)
                continue
            self.usage = Usage(self._pids())
            self._relay_heard[kind] = time.monotonic()
            error = (
                f"{why} while this request or its reply was in it, or while it started "
                "again: the task may or may not have run; the relay runs again, so a new "
                "request goes through"
            )
            event = {"relay": kind, "reason": why, "error": error}
            if kind == "direct":
                grace = RECONNECT_GRACE + len(self.engines.by_id) / RECONNECTS_PER_SECOND
                self._device_settles = (time.monotonic() + grace, event)
            else:
                self.control.relay_restarted()
                self.outbox.event("relay_restarted", event)

    def _silent(self, kind: str, relay: relays.Relay, now: float) -> str | None:
        """Kill a relay that has said nothing for ``--relay-timeout`` seconds (stopped, or
        stuck) while nothing of its waited here, so that it is started again as one that
        ended; how it ended, or None. Each says it runs: the control relay with its batch
        of beats every half heartbeat, the direct relay's device with the copies of its
        nudges (``mux.nudge_every``). Stopped, it would hold every direct request and
        leave engines unanswered until they gave up on the controller."""
        silence = now - self._relay_heard[kind]
        if silence <= self.config.relay_timeout:
            return None
        sock = self.sockets.control if kind == "control" else self.sockets.copies
        if waiting(sock):  # it spoke; this loop is behind
            return None
        relay.proc.kill()
        relay.proc.wait()
        return f"said nothing for {silence:.0f} s (stopped or stuck), so it was killed"

    def _read_requests(self, sock: zmq.Socket) -> None:
        """Read what clients sent, as many messages as :meth:`_drain` reads, but no more once
        they queued as many load-balanced tasks as fill every engine's room: a flood of them
        is booked a slice a pass, each slice dispatched before the next, so engines run the
        first tasks while the rest are read (a map of a million tiny tasks on 2 engines
        left them idle for 9 s)."""
        queue = self.tasks.queue
        booked = len(queue) + max(BOOK_PER_PASS, PREFETCH_MAX * len(self.engines.by_id))
        self._drain(sock, self._handle_client, stop=lambda: len(queue) >= booked)

    @staticmethod
    def _drain(
        sock: zmq.Socket, handle: Any, limit: int = 256, stop: Callable[[], bool] | None = None
    ) -> None:
        protocol.drain(sock, recv_ready(sock), handle, limit, stop)  # the poll found it readable

    def _read_heartbeats(self) -> bool:
        """Read the engines' control messages waiting, up to ``CATCH_UP``; whether none is
        left, here and in the control relay. Silence is judged only then: an engine whose
        heartbeats wait behind a long pass (or a pause, or a relay starved of CPU) is not
        silent, and a backlog larger than that is read a pass at a time rather than
        keeping the loop from clients for as long as it lasts."""
        sock = self.sockets.control
        self._drain(sock, self._handle_control, CATCH_UP)
        return not waiting(sock) and self.control.relay_current()

    def _parse(self, frames: list[Any]) -> Message | None:
        msg = self.session.parse(frames)
        if msg is None:
            log.debug("dropped an unauthenticated or malformed message")
        return msg

    def _handle_client(self, frames: list[Any]) -> None:
        refused = self.session.refused
        msg = self._parse(frames)
        if msg is None and self.session.refused != refused:  # tell a client with a stale key
            self.outbox.delivery.send(bytes(frames[0]), [protocol.REFUSED], watching=True)
        elif msg is not None and isinstance(msg.header.get(CLIENT), bytes):
            self.read_copies()  # what a client asks about includes its direct requests
            self._guard(self._on_client, msg)

    def _on_client(self, msg: Message) -> None:
        kind = msg.kind
        if kind in ("apply", "execute"):
            self.requests.on_request(msg)
        elif kind == "query":
            self.sync_copies()  # and what the device passed its client before it asked
            operations.answer(self, msg)
        else:
            log.warning("unknown client message type %r", kind)

    def _handle_engine(self, frames: list[Any]) -> None:
        msg = self._parse(frames)
        if msg is not None and msg.routing:
            self._guard(self._on_engine, msg, frames)

    def _on_engine(self, msg: Message, frames: list[Any]) -> None:
        ident = bytes(msg.routing[0])
        engine = self.engines.by_uuid.get(ident)
        if engine is None:
            log.warning("work message from unknown engine %s", ident.hex())
        elif msg.kind == "ready":
            self.control.ready(engine, frames[-1])
        else:
            if CLIENT in msg.header and not self._booked(msg):
                # A large direct reply the engine sent its client through the hub; the
                # device's copy of its request is still on its way here.
                self.sync_copies()
            self.replies.account(engine, msg, delivered=False)

    def _booked(self, msg: Message) -> bool:
        """Whether every request a reply (or a batch of replies) answers is in the books."""
        pending = self.ledger.pending
        if msg.kind == "reply":
            return msg.header.get(ID) in pending
        return all(h.get(ID) in pending for h in msg.header.get(REPLY_HEADERS, ()))

    def _handle_control(self, frames: list[Any]) -> None:
        if heartbeats.is_beats(frames):
            self._relay_heard["control"] = time.monotonic()
            self._beats_came = True
            self.control.beats(*heartbeats.beats_of(frames))
            return
        msg = self._parse(frames)
        if msg is not None and msg.routing:
            self._guard(self.control.on_message, msg)

    def _handle_copy(self, frames: list[Any]) -> None:
        """A copy of what the direct device passed on: ``[IN or OUT, to, from, *message]``.

        After a message with one frame (garbage) the device took the next message from
        the same side for the rest of it, unswapped, and lost it; the copy is then ``[IN
        or OUT, garbage, its sender, from, to, *message]`` and this loop delivers it."""
        if mark_of(frames) is not None:  # a nudge's or a sync's: the device runs
            self._relay_heard["direct"] = time.monotonic()
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
            self._guard(self.requests.on_direct_copy, msg, lost)
            operations.arrived(self, msg.header.get(IDS))
        else:
            self._guard(self._on_reply_copy, msg, lost)

    def _on_reply_copy(self, msg: Message, lost: bool = False) -> None:
        """Account for a reply the device passed to its client (or ``lost``: this loop
        passes it on), or note an engine's hello (sent to no one)."""
        engine = self.engines.by_uuid.get(bytes(msg.routing[1]))
        if engine is None:
            return
        if msg.kind == "hello":
            if not engine.hello:
                self.control.hello(engine)
            elif self._device_settles is None:
                # Again: its direct connection dropped and came back. (After a direct
                # relay started again, device_lost fails what the device held, saying so.)
                self.control.direct_reconnected(engine, msg.header.get(HELD, ()))
        else:
            self.replies.account(engine, msg, delivered=not lost)

    def read_copies(self) -> None:
        """Handle every copy the direct device has passed so far."""
        copies = self.sockets.copies
        protocol.drain(copies, recv_frames(copies, block=False), self._handle_copy)

    def sync_copies(self) -> None:
        """Handle the copy of everything the direct device passed before now: a client that
        got a reply from it may ask about that task before the copy crossed from the relay.
        A message of the hub's own goes through the device, and the copies are read up to
        its copy (or for ``SYNC_WAIT`` at most)."""
        copies = self.sockets.copies
        quiet = time.monotonic() - self._relay_heard["direct"] > QUIET_NUDGES * self.nudge_every
        if quiet and not waiting(copies):
            return  # the device is stopped or stuck (see _silent): every query would wait
        try:
            self.sockets.sync.send_multipart([b"", b""], zmq.NOBLOCK)  # to no engine
        except zmq.Again:  # the relay is not reading: nothing to wait for
            return
        deadline = time.monotonic() + SYNC_WAIT
        while (left := deadline - time.monotonic()) > 0 and copies.poll(round(left * 1000)):
            frames = recv_frames(copies, block=False)
            if frames is None:
                continue
            if mark_of(frames) == SYNC:
                return
            self._handle_copy(frames)
        log.warning("the direct device's copies did not catch up in %.1f s", SYNC_WAIT)

    def _handle_monitor(self, frames: list[Any]) -> None:
        event = parse_monitor_message([bytes(f.buffer) for f in frames])
        self.control.disconnected(int(event["value"]))

    def _guard(self, handler: Any, *args: Any) -> None:
        """Run a handler; a malformed but authenticated message must not stop the loop."""
        try:
            handler(*args)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.session.dropped += 1
            log.warning("dropped a malformed %s message: %s", args[0].kind, exc)


def serve(
    config: ControllerConfig,
    connection_file: str | None,
    restore: bool = False,
    ready: Callable[[ConnectionInfo], None] | None = None,
) -> None:
    """Run a controller in this process until it is told to stop.

    With ``restore``, come back on the key and ports of the existing connection file,
    so that running engines and clients reconnect by themselves. ``ready`` is called
    once the connection file is written.
    """
    previous = None
    if restore:
        if not connection_file:
            raise ValueError("--restore needs the connection file of the controller to restore")
        previous = connection.load(connection_file)
    controller = Controller(config, restore=previous)
    info = controller.connection_info()
    if connection_file:
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
    gc.set_threshold(GC_YOUNG)
    if ready is not None:  # once Ctrl-C stops it cleanly: the user may press it at once
        ready(info)
    controller.run()
    if connection_file:
        _forget(Path(connection_file), info)


def _forget(path: Path, info: ConnectionInfo) -> None:
    """Remove the connection file of a controller that stopped (not crashed): there is
    nothing to restore, so `par start` need not offer it."""
    try:
        if connection.load(path).controller_pid == info.controller_pid:
            path.unlink()
    except (ClusterError, OSError):
        pass  # gone already, or another controller's now
