"""Receiving everything the controller sends a client.

Replies resolve :class:`AsyncResult` futures, streamed output (text, rich
displays, published data) fills in metadata as it arrives, events keep the
client's list of engines current, and query replies resolve query futures.
The I/O thread receives, except while a user's thread waits on a result:
that thread then takes the socket over and receives itself (``lead``), so
its reply reaches it without a hand-off between threads. Whichever thread
receives waits for a reply ``LEAD_POLL`` at a time while messages come and
go; once nothing has for that long, it sleeps until something is due (the
next ping, a parked reply, the caller's timeout), woken early by a message
or the receiver's bell (a user's thread that wants the socket, or close):
an idle client, or one waiting on a long task, wakes about twice a second
rather than ten times.

The thread is handed the parts of the client it serves (the ledger, the
outbox, the direct paths, the queries, the event listeners), never the
client itself: what it changes is theirs to say.

A reply whose task streamed output during its run says how many chunks it
streamed; if some are still in flight the reply waits (briefly) for them,
so ``ar.stdout`` is complete once ``ar.get()`` returns.

Before anything else the thread watches its connection's first handshake:
one the controller refuses (Curve on one side only, another Curve key) would
leave the connection dead for good, so the client fails at once, saying why.
A controller that gets a message signed with another key answers ``REFUSED``
(see ``protocol.py``), which fails the client's connect the same way.
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from .. import connection, protocol
from ..bell import Bell
from ..connection import ConnectionInfo
from ..errors import ClusterError
from ..messages import ENAME, IDS, KIND, METHOD, STATUS, split_replies
from ..protocol import Session, is_refusal, recv_frames
from .ledger import Ledger
from .liveness import ControllerWatch
from .outbox import RequestSender
from .outputs import carries_output, record_reply, record_stream
from .paths import Paths
from .queries import Queries
from .replies import FailedHere, Reply, error_reply

if TYPE_CHECKING:
    from .asyncresult import AsyncResult

Listener = Callable[[str, dict[str, Any]], None]  # called with each cluster event

log = logging.getLogger("par.client")

STREAM_WAIT = 2.0
ACTIVE_FOR = 0.01  # seconds after replies came in that this thread wakes every millisecond
HANDOVER = 0.01  # the I/O thread leaves the socket to user's threads this long after a wait
WANTING = 1.0  # the longest a thread waiting for another to hand the socket over sleeps
ASK_AGAIN = 5.0  # seconds between looks for direct replies lost on the way (_ask_again)
ASK_AT_MOST = 1000  # the oldest direct requests asked about at one look
DRAIN_LIMIT = 1000  # messages handled before what else is due (sending, pings)
LEAD_POLL = 0.1  # a receiving thread's longest wait while messages come and go (then: _doze)
HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
    zmq.EVENT_HANDSHAKE_FAILED_AUTH,
)


class IOThread(threading.Thread):
    """Owns the client's reply connection: takes in replies, output, events and answers.

    It connects as ``ident`` to the controller and its direct device (``info``, read
    from connection file ``path``) and sends ``first`` (the query that introduces the
    client). It is handed the parts of the client it serves: the ``ledger`` (whose
    results it resolves and whose engines it keeps current), the outbox (``sender``,
    which it flushes), the direct ``paths`` (which learn what was answered), the
    ``queries`` (which it answers) and the event ``listeners``. ``explain_exit(pid)``
    says how a lost engine ended, if the client's cluster knows.
    """

    def __init__(
        self,
        ctx: zmq.Context,
        info: ConnectionInfo,
        path: Path,
        ident: bytes,
        first: list[Any],
        *,
        session: Session,
        ledger: Ledger,
        sender: RequestSender,
        paths: Paths,
        queries: Queries,
        listeners: list[Listener],
        explain_exit: Callable[[int], str | None],
        controller_timeout: float,
    ) -> None:
        super().__init__(name="par-client-io", daemon=True)
        self.ctx, self.info, self.path, self.first = ctx, info, path, first
        self.identity = ident  # the reply socket's: the controller answers it
        self.ledger = ledger
        self.pending = ledger.pending
        self.arrivals = ledger.arrivals
        self.sender = sender
        self.paths = paths
        self.queries = queries
        self.listeners = listeners
        self.explain_exit = explain_exit
        self.spin_wait = 0.0  # see Client.spin_wait
        self.closing = threading.Event()
        self.bell = Bell()  # ends a dozing receiver's wait (see _doze)
        self.poller = zmq.Poller()  # the socket and the bell, for whoever dozes
        self.streamed: dict[str, int] = {}
        self.parked: dict[str, tuple[Reply, float]] = {}
        self.watch = ControllerWatch(controller_timeout, time.monotonic())
        self.lost = False
        self.accepted = False  # the controller answered: a REFUSED now is no one's
        self.lease = threading.Lock()  # held by the thread using the reply socket
        self.sock: zmq.Socket | None = None
        self.waited = 0.0  # when a user's thread last waited on a result (see lead)
        self.leader: int | None = None  # the thread receiving, while it holds the lease
        self.wanted = 0  # user's threads waiting for the lease (changed under arrivals)
        self.handled = 0.0  # when replies last came in
        self.joiner = protocol.Assembler(session)  # large replies come in chunks
        self.asked_at = 0.0  # when _ask_again last looked, and what was outstanding then
        self.outstanding: set[str] = set()

    def run(self) -> None:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, self.identity)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.RCVTIMEO, round(LEAD_POLL * 1000))  # see _receive
        self.info.secure(sock)
        if not self._connect(sock):
            sock.close()
            return
        self.poller.register(sock, zmq.POLLIN)  # before a user's thread can take the socket
        self.poller.register(self.bell.fd, zmq.POLLIN)
        with self.lease:
            self.sock = sock
        self.watch.sent = time.monotonic()
        try:
            while not self.closing.is_set():
                if self.wanted or time.monotonic() - self.waited < HANDOVER:
                    # A user's thread waits on a result and receives (see lead); this
                    # thread only keeps time while that goes on.
                    with self.arrivals:  # one waiting for the socket takes it now
                        self.arrivals.notify_all()
                    self.closing.wait(HANDOVER)
                    if self.lease.acquire(blocking=False):
                        try:
                            self._keep_time(sock, time.monotonic())
                        finally:
                            self.lease.release()
                    continue
                with self.lease:
                    self.leader = threading.get_ident()
                    self._receive(sock, None, None)
                    self.leader = None
        finally:
            with self.lease:
                self.sock = None
                sock.close()

    def _connect(self, sock: zmq.Socket) -> bool:
        """Connect to the controller, send the first request, and connect to the direct
        device, each connection once its handshake is done; False if one failed (the
        client's connect then fails, saying why) or the client closed meanwhile.

        Engines answer direct requests on this socket too, through the device, which can
        route them only once that connection is up: the answer to the first request
        (the client's connect) is read only then. This socket sends nothing more (a send
        would go to either connection): pings go out on the request socket, answered here
        all the same."""
        info = self.info
        monitor = sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | functools.reduce(operator.or_, HANDSHAKE_FAILED)
        )
        try:
            if not self._handshake(sock, monitor, info.client_url):
                return False
            sock.send_multipart(self.first)
            return self._handshake(sock, monitor, info.direct_url)
        finally:
            sock.disable_monitor()
            monitor.close(linger=0)

    def _handshake(self, sock: zmq.Socket, monitor: zmq.Socket, url: str) -> bool:
        """Connect to ``url`` and wait for the handshake (see :meth:`_connect`; the
        events are this connection's: the one before is up)."""
        sock.connect(url)
        while not self.closing.is_set():
            if not monitor.poll(round(LEAD_POLL * 1000)):
                continue
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return True
            self._refused(f"refused the connection: it {handshake_refusal(self.info, self.path)}")
            return False
        return False

    def lead(self, done: Callable[[], bool], timeout: float | None) -> None:
        """Receive on the calling (user's) thread until ``done()``, ``timeout`` or close.

        A thread waiting on a result takes the reply socket over from the I/O thread and
        handles whatever arrives itself: its reply then reaches it without waking another
        thread and handing Python's GIL back and forth, a good part of a round trip's cost.
        The I/O thread hands the socket over within one poll, and takes it back once no
        thread has waited for ``HANDOVER`` seconds. Called from within a handler (a done
        callback waiting on another result), it goes on receiving where it is.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.leader == threading.get_ident():
            if self.sock is not None:
                self._receive(self.sock, done, deadline)
            return
        spin_until = time.monotonic() + self.spin_wait
        arrivals = self.arrivals
        while not done() and not self.closing.is_set():
            self.waited = now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if self.lease.acquire(blocking=False):
                try:
                    if self.sock is None:
                        return
                    self.leader = threading.get_ident()
                    self._receive(self.sock, done, deadline, spin_until)
                finally:
                    self.leader = None
                    self.waited = time.monotonic()
                    self.lease.release()
                    if self.wanted:  # a thread waiting for the socket takes it over now
                        with arrivals:
                            arrivals.notify_all()
                return
            # Another thread receives, and delivers our reply if it comes; it hands the
            # socket over when it stops (notifying, as every delivery does). So this thread
            # sleeps until one of those, not on a clock: WANTING bounds what none announces.
            with arrivals:
                self.wanted += 1
                try:
                    if self.lease.locked() and not done():
                        if self.leader == self.ident:  # the I/O thread may doze: hand over now
                            self.bell.ring()
                        arrivals.wait(WANTING if deadline is None else min(WANTING, deadline - now))
                finally:
                    self.wanted -= 1

    def _receive(
        self,
        sock: zmq.Socket,
        done: Callable[[], bool] | None,
        deadline: float | None,
        spin_until: float = 0.0,
    ) -> None:
        """Handle what arrives, holding the lease: until ``done()`` or ``deadline`` for a
        user's thread; one poll for the I/O thread (``done`` None).

        Until ``spin_until`` a user's thread polls without sleeping: a thread that sleeps
        wakes late, by tens of microseconds on a virtual machine, and a reply often comes
        within a millisecond (see ``Client.spin_wait``)."""
        sender = self.sender
        while not self.closing.is_set():
            now = time.monotonic()
            quiet_for = now - max(self.handled, sender.sent_at)  # no reply in, no request out
            if done is None:
                # While replies come in or requests go out, requests wait for this thread
                # (see outbox.py), which then wakes often enough to send them; else it
                # sleeps longer.
                active = quiet_for < ACTIVE_FOR
                timeout = 0.001 if active else LEAD_POLL
            elif done() or (deadline is not None and now >= deadline):
                return
            else:
                active = False
                timeout = LEAD_POLL if deadline is None else min(LEAD_POLL, deadline - now)
            if sender.waiting or sender.io_busy or sender.io_active != active:
                sender.idle(active)  # sends the requests held for this thread
            first = None
            if now < spin_until:
                first = recv_frames(sock, block=False)
                if first is None:
                    continue
            elif timeout >= LEAD_POLL and quiet_for >= LEAD_POLL:
                first = self._doze(sock, now, deadline)
            elif timeout >= LEAD_POLL:  # a receive waits as long as a poll would, for less
                try:
                    first = recv_frames(sock)
                except zmq.Again:
                    pass
            elif sock.poll(max(1, round(timeout * 1000))):
                first = recv_frames(sock, block=False)
            if first is not None:
                sender.io_busy = True  # hold the user's requests until this drain is done
                outstanding = len(self.pending)
                self._drain(sock, first, done)
                if len(self.pending) != outstanding:  # replies, not a ping's answer or an event
                    self.handled = time.monotonic()
                if done is not None:
                    sender.idle(False)
            self._keep_time(sock, time.monotonic())
            if done is None:
                return

    def stop(self) -> None:
        """Ask the thread to end (whichever thread receives notices at once)."""
        self.closing.set()
        self.bell.ring()

    def _doze(self, sock: zmq.Socket, now: float, deadline: float | None) -> list[Any] | None:
        """Wait for a message, the bell, or what is next due (see the module's docstring):
        the first frames of a message, if one came."""
        due = self.watch.next_ping
        if self.parked:
            due = min(due, *(until for _, until in self.parked.values()))
        if deadline is not None:
            due = min(due, deadline)
        ready = dict(self.poller.poll(max(1, math.ceil((due - now) * 1000))))
        if self.bell.fd in ready:
            self.bell.clear()
        return recv_frames(sock, block=False) if sock in ready else None

    def _keep_time(self, sock: zmq.Socket, now: float) -> None:
        """What is due whoever receives: parked replies, pings, the controller's silence."""
        if self.parked:
            self._release_parked(force_before=now)
        if self.watch.due(now):
            lost = self.watch.ping(now)  # judged after this pass drained what had arrived
            self.queries.send("ping", {})
            if lost and not self.lost:
                self._lose_controller()
            if now - self.asked_at >= ASK_AGAIN:
                self._ask_again(now)

    def _ask_again(self, now: float) -> None:
        """Ask the controller again for the replies of the direct requests outstanding since
        the last look (``ASK_AGAIN`` ago) that finished meanwhile.

        ZeroMQ mends a dropped connection by itself without a word, and a reply the direct
        device routed to this client while its connection was down is gone. The controller
        keeps every direct reply's copy, and reads the device's copies before it answers
        a query: ``resend`` with ``finished`` sends those done, as a reply; one that came
        meanwhile is ignored. (An engine's side: see par.engine.reconnects.) A look costs
        no socket: with a monitor of the reply socket (or any idle socket more) in this
        thread, W6's CPU-bound map on two cores measured 94 % efficient, not 98-101 %."""
        self.asked_at = now
        waiting = self.paths.through_device()
        old = [mid for mid in waiting if mid in self.outstanding][:ASK_AT_MOST]
        self.outstanding = set(waiting)
        if old:
            self.queries.send("resend", {IDS: old, "finished": True})

    def _drain(
        self, sock: zmq.Socket, first: list[Any], done: Callable[[], bool] | None = None
    ) -> None:
        """Handle ``first`` and what else waits on the socket (a bounded number; for a
        user's thread, until its result is ``done``: the next receiver handles the rest)."""
        protocol.drain(sock, first, self._handle, DRAIN_LIMIT, done)

    def _handle(self, frames: list[Any]) -> None:
        msg = self.joiner.parse(frames)
        if msg is False:  # a chunk of a large reply: more to come
            return
        if msg is None:
            if is_refusal(frames) and not self.accepted:
                self._refused(
                    f"refused this client's messages: the key in connection file {self.path} "
                    "is not the cluster's"
                )
            else:
                log.warning("dropped an unauthenticated or malformed message")
            return
        self.watch.heard = True
        self.accepted = True
        if self.lost:
            self.lost = False
            log.warning("the controller answers again")
        try:
            self._on_message(msg.kind, msg.header, msg.payload, msg.buffers)
        except Exception:
            log.exception("error handling a %r message", msg.kind)

    def _on_message(
        self, kind: str, h: dict[str, Any], payload: list[Any], buffers: list[Any]
    ) -> None:
        if kind == "reply":
            self._on_reply(Reply(h, payload, buffers, time.time()))
        elif kind == "replies":
            self._split_replies(h, payload, buffers)
        elif kind == "failed":
            self._on_failed(h, payload)
        elif kind == "stream":
            self._on_stream(h, payload, buffers)
        elif kind == "event":
            self._on_event(h.get("k", ""), h.get("d", {}))
        elif kind == "qr":
            self.queries.answered(h, payload)

    def _refused(self, why: str) -> None:
        """Fail the queries waiting (the client's connect) with why the controller refused
        this client."""
        url = self.info.client_url
        self.queries.refused(ClusterError(f"the controller at {url} {why}; {connection.FIX}"))

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        """A cluster event: for the listeners, and the engines' bookkeeping."""
        for listener in self.listeners:
            try:
                listener(kind, data)
            except Exception:
                log.exception("event listener failed")
        if kind == "engine_up":
            self.ledger.engine_up(data)
        elif kind in ("engine_lost", "engine_stopped"):
            if isinstance(data.get("uuid"), str):  # a reply it was sending never ends
                self.joiner.drop((bytes.fromhex(data["uuid"]),))
            self.ledger.engine_gone(data)
        elif kind == "controller_stopped":
            self.fail_all("EngineError", "the controller stopped")
        elif kind == "relay_restarted" and data.get("relay") == "direct":
            # The controller failed what the ended relay had passed it; what it took and
            # never passed on is this client's to fail, rather than to wait for.
            self.fail_all("ControllerLost", str(data.get("error")), self.paths.through_device())

    def _on_reply(self, reply: Reply) -> None:
        """Account for a reply: hand it to its result once what its task streamed is in."""
        arrived = self._arrived(reply)
        if arrived is not None:
            self._deliver(arrived.header["id"], arrived)

    def _arrived(self, reply: Reply) -> Reply | None:
        """A reply accounted for, to deliver now; None if it waits for what its task
        streamed (parked)."""
        h = reply.header
        mid = h["id"]
        self.paths.answered(mid)
        if h.get("en") == "EngineError":
            reply = self._explain_engine_error(reply)
        if self.streamed.get(mid, 0) < h.get("ns", 0):
            self.parked[mid] = (reply, time.monotonic() + STREAM_WAIT)
            return None
        return reply

    def _split_replies(self, h: dict[str, Any], payload: list[Any], buffers: list[Any]) -> None:
        """Take apart a reply batch: several replies in one message, received at once.

        A small value is copied out of the batch's frame into a tuple of bytes, which the
        collector stops tracking: a map's results are held until read, and a frame's view
        and a list for each were half of what full collections walked."""
        received = time.time()
        self._on_replies(
            Reply(header, tuple(protocol.detach(part)), bufs, received)
            for header, part, bufs in split_replies(h, payload, buffers)
        )

    def _on_failed(self, h: dict[str, Any], payload: list[Any]) -> None:
        """Take in a failure batch: tasks the controller failed with one error (an abort of
        many), one reply standing for them all."""
        fields = {key: h.get(key) for key in (STATUS, ENAME, METHOD)}
        failed = FailedHere({KIND: "reply", **fields}, bytes(protocol.buffer_of(payload[0])))
        ids = h[IDS]
        for mid in ids:
            self.paths.answered(mid)
        self._hand_over([(mid, failed) for mid in ids])

    def _on_replies(self, replies: Iterable[Reply]) -> None:
        """Account for several replies at once: those ready go to their results together
        (see :meth:`_hand_over`)."""
        ready = []
        for reply in replies:
            arrived = self._arrived(reply)
            if arrived is not None:
                ready.append((arrived.header["id"], arrived))
        self._hand_over(ready)

    def _explain_engine_error(self, reply: Reply) -> Reply:
        """Add what the cluster's launcher knows (exit status, last output) to an EngineError."""
        pid = self.ledger.gone.get(reply.header.get("e", -1))
        try:
            report = self.explain_exit(pid) if pid else None
        except Exception:  # the report is a courtesy: never lose the error over it
            log.exception("could not describe how engine pid %s ended", pid)
            report = None
        if not report:
            return reply
        content = protocol.decode(reply.payload[0])
        content["evalue"] = f"{content.get('evalue', '')}; {report}"
        return Reply(reply.header, [protocol.encode(content)], reply.buffers, reply.received)

    def _deliver(self, mid: str, reply: Reply) -> None:
        """Hand a reply to its result (see :meth:`_hand_over`)."""
        self._hand_over([(mid, reply)])

    def _hand_over(self, replies: list[tuple[str, Reply]]) -> None:
        """Hand replies to their results, a result's run of them at once (one wake-up of
        the threads waiting: a reply batch of a map's tasks is mostly one result's). The
        output a reply carries is recorded first, after what its task streamed; a run's
        messages stop being outstanding just before its result takes them in, as one
        reply's did."""
        pending, streamed = self.pending, self.streamed
        owner: AsyncResult | None = None
        run: list[tuple[str, Reply]] = []
        for mid, reply in replies:
            streamed.pop(mid, None)
            ar: AsyncResult | None = pending.get(mid)
            if ar is None:
                continue
            if carries_output(reply.header):
                reply = record_reply(ar.metadata_of(mid), reply)
            if ar is not owner:
                if owner is not None:
                    self._take_in(owner, run)
                owner, run = ar, []
            run.append((mid, reply))
        if owner is not None:
            self._take_in(owner, run)

    def _take_in(self, ar: AsyncResult, run: list[tuple[str, Reply]]) -> None:
        pending = self.pending
        for mid, _ in run:
            pending.pop(mid, None)
        ar.deliver_all(run)

    def _on_stream(self, h: dict[str, Any], payload: list[Any], buffers: list[Any]) -> None:
        for listener in self.listeners:
            listener("stream", h)
        mid = h.get("id", "")
        if mid not in self.pending:
            return  # another client's task, seen because this client monitors
        record_stream(self.pending[mid].metadata_of(mid), h, payload, buffers)
        self.streamed[mid] = self.streamed.get(mid, 0) + 1
        parked = self.parked.get(mid)
        if parked is not None and self.streamed[mid] >= parked[0].header.get("ns", 0):
            del self.parked[mid]
            self._deliver(mid, parked[0])

    def _release_parked(self, force_before: float) -> None:
        for mid, (reply, deadline) in list(self.parked.items()):
            if deadline <= force_before:
                del self.parked[mid]
                self._deliver(mid, reply)

    def _lose_controller(self) -> None:
        """Fail what is outstanding: the controller has been silent too long."""
        silent = self.watch.silent_for
        self.lost = True
        self.ledger.engines_unknown()  # until a controller tells again
        url = self.info.client_url
        log.warning("no answer from the controller at %s for %.0f s", url, silent)
        self.fail_all(
            "ControllerLost",
            f"no answer from the controller at {url} for {silent:.0f} s; the request may or may "
            "not have run (restart it with `par controller --restore` to reconnect)",
        )

    def fail_all(self, ename: str, evalue: str, only: list[str] | None = None) -> None:
        """Resolve every outstanding request (or those of ``only`` still outstanding) with an
        error: the controller, or the path they took, is gone."""
        pending = self.pending
        ids = list(pending) if only is None else [m for m in only if m in pending]
        self._on_replies(error_reply(mid, ename, evalue) for mid in ids)


def handshake_refusal(info: ConnectionInfo, path: Path) -> str:
    """Why the controller refused a connection's handshake, for the client of connection
    file ``path`` (how the handshake failed does not tell a controller that does not
    encrypt from one with another key)."""
    if not info.curve_serverkey:
        return f"encrypts (CurveZMQ), and connection file {path} has no curve_serverkey"
    return (
        "does not encrypt, or not with the CurveZMQ key that is the curve_serverkey in "
        f"connection file {path}"
    )
