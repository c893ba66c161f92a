"""The engine's control thread: registration, heartbeats, control and streaming.

It owns the engine's control connection, so it keeps answering while user
code holds the main thread: heartbeats go out, abort, signal and clear
requests take effect at once (a clear empties the user namespace here, as
ipyparallel's control channel does, ahead of queued work), and the output of
a long task (text, displays, published data) streams to its client.

A stop request escalates until the engine is gone: SIGINT interrupts the
running task (the main thread then stops instead of starting the next one),
SIGTERM follows after ``STOP_GRACE`` seconds, and if the process still lives
after as long again (a task that blocks or ignores both), this thread ends the
task's processes and kills the engine with SIGKILL, saying so in its log.

Between its duties the thread dozes until the next one falls due (a
heartbeat, a stop's next step), or until a message comes or the main thread
rings its bell (see bell.py): when a task starts whose output may stream,
and when the engine ends.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import zmq

from ..bell import Bell
from ..messages import ASK, STATS
from ..protocol import Session, send_frames
from . import children, namespace
from .capture import Capture
from .claims import Claims
from .display import plain_text

log = logging.getLogger("par.engine")

STREAM_INTERVAL = 0.1
REREGISTER = 2.0  # seconds between registrations until one is answered
STOP_GRACE = 2.0  # seconds each step of a stop gets before the next, harder one
CONTROLLER_TIMEOUT = 60.0  # seconds of the controller's silence after which an engine stops
ASK_AFTER = 6  # a beat asks for an answer after a sixth of the controller timeout in silence


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class ControlThread(threading.Thread):
    """Keeps an engine registered and responsive while its main thread works."""

    def __init__(
        self,
        ctx: zmq.Context,
        url: str,
        ident: bytes,
        session: Session,
        capture: Capture,
        controller_timeout: float,
        secure: Any,
    ) -> None:
        super().__init__(name="par-engine-control", daemon=True)
        self.ctx = ctx
        self.url = url
        self.routing_id = ident
        self.session = session
        self.capture = capture
        self.controller_timeout = controller_timeout
        self.secure = secure
        self.engine_id: int | None = None
        self.previous_id: int | None = None
        self.heartbeat = 1.0
        self._next_hb = 0.0  # monotonic time of the next heartbeat
        self.registered = threading.Event()
        self.ready_needed = threading.Event()  # the main thread says "ready" again
        self.wake_main = Bell()  # rung with ready_needed: the main thread may be idle
        self.bell = Bell()  # the main thread rings it: closing, or a task began (dozing)
        self.dozing = False  # waiting for what is next due, not looking at a task's output
        self.claims = Claims()
        self.stopping = threading.Event()  # the main thread stops instead of running more
        self._escalation: list[tuple[float, signal.Signals]] = []  # signals still to send
        self._sent: list[str] = []  # names of the signals a stop sent so far
        self._stop_began = 0.0
        self.running_task: str | None = None
        self.task_started: float | None = None  # wall-clock start of the running task
        self.closing = threading.Event()
        self.lost_reason = ""
        self._cpu_mark = (time.monotonic(), sum(os.times()[:2]))

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"python": sys.executable, "cwd": os.getcwd()}
        extra = os.environ.get("PAR_ENGINE_INFO")
        if extra:
            try:
                info.update(json.loads(extra))
            except ValueError:
                log.warning("ignoring PAR_ENGINE_INFO: not JSON")
        return info

    def _stats(self) -> dict[str, Any]:
        now, cpu = time.monotonic(), sum(os.times()[:2])
        then, cpu0 = self._cpu_mark
        self._cpu_mark = (now, cpu)
        pct = 100.0 * (cpu - cpu0) / (now - then) if now > then else 0.0
        return {
            "cpu": round(pct, 1),
            "rss": _rss_bytes(),
            "task": self.running_task,
            "task_started": self.task_started,
        }

    def _send(
        self,
        sock: zmq.Socket,
        header: dict[str, Any],
        payload: Sequence[Any] = (),
        buffers: Sequence[Any] = (),
    ) -> None:
        send_frames(sock, self.session.serialize(header, payload, buffers))

    def run(self) -> None:
        # SIGINT and SIGTERM go to the main thread, whose wait they end: the one that runs
        # tasks and stops (Linux prefers it anyway; other systems pick any thread).
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, self.routing_id)
        sock.setsockopt(zmq.LINGER, 500)
        self.secure(sock)
        sock.connect(self.url)
        try:
            self._loop(sock)
        finally:
            sock.close()

    def _register(self, sock: zmq.Socket) -> None:
        header = {
            "t": "reg",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "info": {**self._info(), "previous_id": self.previous_id},
        }
        self._send(sock, header)

    def _loop(self, sock: zmq.Socket) -> None:
        self._register(sock)
        last_ok = last_reg = time.monotonic()
        self._next_hb = last_ok + self.heartbeat
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self.bell.fd, zmq.POLLIN)
        rung = False
        while not self.closing.is_set():
            # Dozing until what is next due, unless a task runs whose output streams, or
            # began since the last look (the main thread rang: many short tasks then ring
            # at most once an interval). Dozing is marked before the look at the task, so
            # one of the two threads sees the other's mark.
            self.dozing = not rung
            if self.dozing and self.capture.current is None:
                timeout = self._next_due(last_ok, last_reg) - time.monotonic()
            else:
                self.dozing = False
                timeout = STREAM_INTERVAL
            ready = dict(poller.poll(max(0, math.ceil(timeout * 1000))))
            self.dozing = False
            rung = self.bell.fd in ready
            if rung:
                self.bell.clear()
            if sock in ready:
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    msg = self.session.parse(frames)
                    if msg is not None:
                        last_ok = time.monotonic()
                        self._on_message(sock, msg.kind, msg.header)
            now = time.monotonic()
            self._stream(sock)
            if self.engine_id is None and now - last_reg > REREGISTER:
                self._register(sock)
                last_reg = now
            if now >= self._next_hb and self.engine_id is not None:
                beat: dict[str, Any] = {"t": "hb", STATS: self._stats()}
                if now - last_ok > self.controller_timeout / ASK_AFTER:
                    beat[ASK] = 1  # heard nothing for a while: the relay answers this one
                self._send(sock, beat)
                self._next_hb = now + self.heartbeat
            if self._escalation and now >= self._escalation[0][0]:
                self._escalate()
            if now - last_ok > self.controller_timeout and not self.stopping.is_set():
                self.lost_reason = (
                    f"controller at {self.url} silent for {self.controller_timeout:.0f} s"
                )
                self._begin_stop()
        if self.engine_id is not None:
            self._send(sock, {"t": "unreg"})

    def _next_due(self, last_ok: float, last_reg: float) -> float:
        """When the next of this thread's timed duties falls due: a heartbeat (or another
        registration), a stop's next step, or judging the controller lost."""
        due = [self._next_hb if self.engine_id is not None else last_reg + REREGISTER]
        if self._escalation:
            due.append(self._escalation[0][0])
        if not self.stopping.is_set():
            due.append(last_ok + self.controller_timeout)
        return min(due)

    def _pace(self, seconds: float) -> None:
        """Beat every ``seconds`` from now on; sooner at once if that is shorter (a restored
        controller's), which judges the engine from its registration."""
        self.heartbeat = seconds
        self._next_hb = min(self._next_hb, time.monotonic() + seconds)

    def _on_message(self, sock: zmq.Socket, kind: str, h: dict[str, Any]) -> None:
        if kind == "reg_ok":
            self.engine_id = int(h["id"])
            self._pace(float(h.get("hb", self.heartbeat)))
            self.ready_needed.set()
            self.wake_main.ring()
            self.registered.set()
        elif kind == "hbok":  # the interval grows with the engine count (a late answer's
            # may be older than the last registration's: the longer counts)
            self._pace(max(self.heartbeat, float(h.get("hb", 0.0))))
        elif kind == "rereg":  # the controller restarted and does not know us: register again
            if self.engine_id is not None:
                self.previous_id = self.engine_id
            self.engine_id = None
            self._register(sock)
        elif kind == "abort":
            aborted = self.claims.abort(h.get("ids", []))
            if aborted:
                self._send(sock, {"t": "aborted", "ids": aborted})
        elif kind == "clear":
            namespace.clear()
            self._send(sock, {"t": "cleared", "qid": h.get("qid")})
        elif kind == "signal":
            sig = h["sig"]
            signum = getattr(signal, sig) if isinstance(sig, str) else int(sig)
            os.kill(os.getpid(), signum)
        elif kind == "stop" and not self.stopping.is_set():
            self._begin_stop()

    def _begin_stop(self) -> None:
        """Stop the engine: the first step now, the harder ones every ``STOP_GRACE`` s."""
        self.stopping.set()
        # SIGINT only interrupts a running task; an idle engine stops on SIGTERM.
        steps = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
        if self.running_task is None:
            steps = steps[1:]
        self._stop_began = now = time.monotonic()
        self._escalation = [(now + i * STOP_GRACE, sig) for i, sig in enumerate(steps)]
        self._escalate()

    def _escalate(self) -> None:
        """Take the next step of a stop: a signal to this process, at last SIGKILL."""
        _, sig = self._escalation.pop(0)
        if sig != signal.SIGKILL:
            log.info("stopping: sending %s to the engine", sig.name)
            os.kill(os.getpid(), sig)
            self._sent.append(sig.name)
            return
        # The controller sees the connection close; the engine's log, which its launcher
        # shows with the error, says why.
        waited = time.monotonic() - self._stop_began
        log.error(
            "stopping: still running %.0f s after %s: killing the engine with SIGKILL",
            waited,
            " and ".join(self._sent),
        )
        children.end_descendants()
        os.kill(os.getpid(), signal.SIGKILL)

    def _stream(self, sock: zmq.Socket) -> None:
        """Send what the running task output since the last call: text, displays, data."""
        current = self.capture.current
        if current is None:
            return
        texts, displays, published = current.take()
        base: dict[str, Any] = {"t": "stream", "id": current.msg_id, "e": self.engine_id}
        if current.client is not None:
            base["c"] = current.client
        for name, text in texts.items():
            self._send(sock, {**base, "n": name, "d": text})
        if displays:
            # "d": the displays as text, for readers of text streams (par monitor)
            plain = "".join(plain_text(entry["data"]) + "\n" for entry, _, _ in displays)
            self._send(sock, {**base, "n": "display", "d": plain, "dp": displays})
        for _, data, buffers in published:
            self._send(sock, {**base, "n": "data"}, [data], buffers)
