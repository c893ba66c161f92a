"""The engine process: registers, then runs requests one at a time.

The main thread owns the two request connections and runs user code: the
work connection brings load-balanced tasks from the controller (and takes
their replies back), the direct connection brings clients' direct requests
through the controller's direct device (see ``controller/mux.py``) and takes
each reply to its client. The control thread (:mod:`par.engine.control`)
answers the controller meanwhile.
SIGINT interrupts a running task (it fails with KeyboardInterrupt) and is
ignored between tasks, so an interrupt never kills the engine; SIGTERM
stops it cleanly. A task that raises SystemExit (``sys.exit()``, an
argparse error) fails with it like with any other exception: only SIGTERM
or a stop request ends the engine. When the engine ends, so do the
processes its tasks started (:mod:`par.engine.children`).
"""

from __future__ import annotations

import logging
import os
import signal
import time
import traceback
import uuid
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import zmq

from .. import protocol, serialize
from ..connection import ConnectionInfo
from ..errors import RemoteError
from ..messages import CLIENT, ENAME, HELD, PUBLISHED, STATUS, join_replies, split_tasks
from ..protocol import Message, Session, buffer_of, recv_ready, send_frames
from . import cells, children, display, figures, namespace
from .capture import DEFAULT_OUTPUT_LIMIT, Capture
from .control import CONTROLLER_TIMEOUT, ControlThread
from .reconnects import Reconnects

log = logging.getLogger("par.engine")

_OWN_FILES = str(Path(__file__).parent)
FUNCTION_CACHE_SIZE = 128
# Replies finished within REPLY_DELAY of each other share a message (up to these bounds).
REPLY_DELAY = 0.001
BATCH_REPLIES = 256
BATCH_BYTES = 1 << 20
# An idle engine waits for a request, the control thread's bell (see par/bell.py) or a signal;
# this bounds the wait should a signal go to a thread a task started, whose wait it ends.
IDLE_WAKE_MS = 5000

# kind, msg id, header, payload, buffers, and the client its reply goes to on the
# direct connection (None: back to the controller on the work connection)
Task = tuple[str, str, dict[str, Any], list[Any], list[Any], bytes | None]
Reply = tuple[dict[str, Any], list[Any], list[Any]]  # header, payload, buffers


class Stopping(BaseException):
    """Raised in the main thread by SIGTERM: the engine stops, even in the middle of a task."""


def error_content(exc: BaseException) -> dict[str, str]:
    """Describe an exception as plain strings, even if its ``str`` raises."""
    ename = type(exc).__name__
    try:
        evalue = str(exc)
    except Exception:
        evalue = f"<unprintable {ename}>"
    if isinstance(exc, RemoteError):  # raised on purpose on the engine: keep its own words
        ename, evalue = exc.ename, exc.evalue
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OWN_FILES):
        tb = tb.tb_next
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:
        text = f"{ename}: {evalue}\n"
    return {"ename": ename, "evalue": evalue, "traceback": text}


def tasks_of(msg: Message, engine_id: int | None, to: bytes | None) -> list[Task]:
    """The tasks a request carries for engine ``engine_id``: its own of a request fanned
    out to several engines, or each of a load-balanced batch (``to``: the client its
    replies go to on the direct connection, None for the controller)."""
    h, kind = msg.header, msg.kind
    if "tg" in h:  # a direct request fanned out to several engines: pick ours
        mid = str(h["ids"][h["tg"].index(engine_id)])
        return [(kind, mid, h, msg.payload, msg.buffers, to)]
    return [
        (kind, mid, h, payload, buffers, to)
        for mid, payload, buffers in split_tasks(h, msg.payload, msg.buffers)
    ]


class Engine:
    """One engine: a namespace, a work connection and a control thread."""

    def __init__(
        self,
        info: ConnectionInfo,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        controller_timeout: float = CONTROLLER_TIMEOUT,
    ) -> None:
        self.info = info
        self.session = Session(info.key_bytes)
        self.joiner = protocol.Assembler(self.session)  # large direct requests come in chunks
        self.ctx = zmq.Context()
        self.ident = uuid.uuid4().bytes
        self.capture = Capture(output_limit)
        self.functions: OrderedDict[str, Any] = OrderedDict()
        self.control = ControlThread(
            self.ctx,
            info.control_url,
            self.ident,
            self.session,
            self.capture,
            controller_timeout,
            info.secure,
        )
        self.running: str | None = None
        self.pid = os.getpid()
        self.ending = False  # once set, SIGTERM no longer raises: the engine is on its way out
        self.execution_count = 0  # of execute requests that were not silent, as IPython counts

    # ---- signals ---------------------------------------------------------------------------

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.running is not None:
            raise KeyboardInterrupt

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if os.getpid() != self.pid:  # a process a task forked, with the engine's stack
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)  # ends it, as in any Python process
            return
        if self.ending:  # on its way out: this is a second SIGTERM (the fork server's, say)
            return
        # Marked ending before the Event takes its lock: a SIGTERM that comes in the middle
        # of set() runs this again in this thread, and would wait for ever on that lock.
        self.ending = True
        self.control.stopping.set()
        raise Stopping

    # ---- running requests -------------------------------------------------------------------

    def _function(self, digest: str, data: Any) -> Any:
        f = self.functions.get(digest)
        if f is None:
            f = namespace.bind(serialize.loads(data))
            self.functions[digest] = f
            if len(self.functions) > FUNCTION_CACHE_SIZE:
                self.functions.popitem(last=False)
        else:
            self.functions.move_to_end(digest)
        return f

    def _execute(self, code: str, silent: bool) -> None:
        """Run an execute request; unless silent, its final value becomes its execute_result."""
        out = self.capture.current
        assert out is not None  # handle() started capturing
        if not silent:
            self.execution_count += 1
        out.execution_count = self.execution_count
        value = cells.run(code, interactive=not silent)
        if value is not None:
            out.set_result(display.result_display(value))

    def _run(self, task: Task) -> Any:
        kind, _, h, payload, buffers, _ = task
        if kind == "execute":
            self._execute(bytes(buffer_of(payload[0])).decode(), not h.get("x"))
            return None
        f = self._function(h["f"], payload[0])
        args, kwargs = serialize.loads(payload[1], buffers)
        if h.get("mp"):
            return list(map(f, *args))
        return f(*args, **kwargs)

    def handle(self, task: Task) -> Reply:
        """Run one task; return its reply (header, payload frames, buffers)."""
        kind, mid = task[0], task[1]
        reply: dict[str, Any] = {"t": "reply", "id": mid, "e": self.control.engine_id, "m": kind}
        client = task[2].get("c")
        self.capture.start(mid, client if isinstance(client, bytes) else None)
        if self.control.dozing:  # its output streams: the control thread looks at it
            self.control.bell.ring()
        reply["ts"] = time.time()
        self.control.task_started = reply["ts"]
        self.control.running_task = mid
        buffers: list[Any] = []
        try:
            self.running = mid
            try:
                result = self._run(task)
            finally:
                self.running = None
            data, buffers = serialize.dumps(result)
            payload = [data]
            reply["st"] = "ok"
        except Stopping:
            raise
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the task failed
            content = error_content(exc)
            content["engine_uuid"] = self.ident.hex()  # for the error's engine_info
            reply.update(st="error", en=content["ename"])
            payload, buffers = [protocol.encode(content)], []
        reply["tc"] = time.time()
        self.control.running_task = None
        self.control.task_started = None
        rest, streamed, published = self.capture.stop()
        if rest:
            reply.update(rest)
        if streamed:
            reply["ns"] = streamed
        if published:  # after the result's frames: a pickle and its buffers per publication
            reply["pd"] = [len(bufs) for _, _, bufs in published]
            payload = [*payload, *(data for _, data, _ in published)]
            buffers = [*buffers, *(b for _, _, bufs in published for b in bufs)]
        return reply, payload, buffers

    # ---- the loop ---------------------------------------------------------------------------

    def run(self, registration_timeout: float = 30.0) -> None:
        """Register, then serve requests until stopped."""
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        children.adopt_orphans()
        self.capture.install()
        display.hook_ipython()
        figures.default_to_inline()
        self.control.start()
        work, direct = self._dealer(), self._dealer()
        try:
            if not self.control.registered.wait(registration_timeout):
                raise SystemExit(
                    f"par engine: no answer from the controller at {self.info.control_url} "
                    f"within {registration_timeout:.0f} s; is the cluster running?"
                )
            work.connect(self.info.engine_url)
            direct.connect(self.info.engine_direct_url)
            log.info("registered as engine %s", self.control.engine_id)
            self._serve(work, direct)
        except Stopping:
            log.info("stopping: SIGTERM")
        finally:
            self.ending = True
            self.control.closing.set()
            self.control.bell.ring()
            self.control.join(timeout=2)
            children.end_descendants()
            work.close()
            direct.close()
            self.ctx.destroy(linger=1000)
            if self.control.lost_reason:
                log.error("par engine: stopping: %s", self.control.lost_reason)

    def _dealer(self) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, self.ident)
        sock.setsockopt(zmq.LINGER, 2000)
        self.info.secure(sock)
        return sock

    def _queue(self, frames: list[Any], queue: deque[Task], direct: bool) -> None:
        """Queue the tasks of one received request (``direct``: from a client, through the
        direct device: its replies go back that way, to the client the request names)."""
        msg = self.joiner.parse(frames) if direct else self.session.parse(frames)
        if msg is False:  # a chunk of a large request: more to come
            return
        if msg is None:
            log.warning("dropped an unauthenticated or malformed request")
        elif msg.kind in ("apply", "execute"):
            to = msg.header.get("c") if direct else None
            try:
                if direct and not isinstance(to, bytes):
                    raise ValueError("a direct request names no client")
                queue.extend(tasks_of(msg, self.control.engine_id, to))
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                log.warning("dropped a malformed request: %s", exc)

    def _serve(self, work: zmq.Socket, direct: zmq.Socket) -> None:
        """Run queued tasks in order; replies finished close together go back as one message.

        A reply waits at most ``REPLY_DELAY`` for company, and never while the engine
        would otherwise sit idle, so one task alone is answered at once.
        """
        queue: deque[Task] = deque()
        outbox = Outbox(self.session, self.info.max_message_bytes)
        reconnects = Reconnects(direct)
        poller = zmq.Poller()
        handlers = {
            direct: lambda frames: self._queue(frames, queue, True),
            work: lambda frames: self._queue(frames, queue, False),
            reconnects.events: reconnects.on_event,
        }
        for sock in handlers:
            poller.register(sock, zmq.POLLIN)
        bell = self.control.wake_main
        poller.register(bell.fd, zmq.POLLIN)
        try:
            while not self.control.stopping.is_set():
                if self.control.ready_needed.is_set():
                    self.control.ready_needed.clear()
                    work.send_multipart(self.session.serialize({"t": "ready"}))
                    # To no one: the controller sees the device pass it on, and knows the
                    # device reaches this engine.
                    direct.send_multipart([b"", *self.session.serialize({"t": "hello"})])
                if reconnects.back:  # see reconnects.py
                    reconnects.back = False
                    protocol.drain(direct, recv_ready(direct), handlers[direct])
                    outbox.flush(work, direct)
                    held = [task[1] for task in queue if task[5] is not None]
                    hello = self.session.serialize({"t": "hello", HELD: held})
                    direct.send_multipart([b"", *hello])
                if not queue:
                    # Out of work: what is finished goes now, then wait for a request, or
                    # for the control thread's bell (it asks for a "ready").
                    outbox.flush(work, direct)
                    for sock, _ in poller.poll(IDLE_WAKE_MS):
                        if sock == bell.fd:
                            bell.clear()
                        else:
                            protocol.drain(sock, recv_ready(sock), handlers[sock])
                    continue
                task = queue.popleft()
                if not self.control.claims.run(task[1]):
                    continue  # aborted before it started: the control thread said so
                try:
                    outbox.add(self.handle(task), task[5])
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    log.warning("dropped a malformed request: %s", exc)
                if outbox.due():
                    outbox.flush(work, direct)
        finally:  # replies finished go out, whatever stops the engine
            self.ending = True
            outbox.flush(work, direct)
            reconnects.close()


class Outbox:
    """Replies finished but not yet sent, flushed as one message for each destination.

    A reply with a frame larger than the controller takes (``max_frame``; 0: no limit)
    is held as an error that says so instead: sent, it would cost the engine its
    connection and the task its result without a word.
    """

    def __init__(self, session: Session, max_frame: int = 0) -> None:
        self.session = session
        self.max_frame = max_frame
        self.replies: dict[bytes | None, list[Reply]] = {}  # by client (None: controller)
        self.held = 0
        self.first = 0.0
        self.nbytes = 0

    def add(self, reply: Reply, to: bytes | None) -> None:
        """Hold a reply for the controller (``to`` None) or a client until :meth:`flush`."""
        if self.max_frame:
            reply = self._fitting(reply, to)
        if not self.held:
            self.first = time.perf_counter()
        self.held += 1
        held = self.replies.get(to)
        if held is None:
            self.replies[to] = [reply]
        else:
            held.append(reply)
        if reply[2]:
            self.nbytes += sum(memoryview(b).nbytes for b in reply[2])  # PickleBuffers: no len

    def due(self) -> bool:
        """Whether the held replies have waited long enough (or are big enough) to go."""
        return bool(self.held) and (
            self.nbytes > BATCH_BYTES
            or self.held >= BATCH_REPLIES
            or time.perf_counter() - self.first > REPLY_DELAY
        )

    def flush(self, work: zmq.Socket, direct: zmq.Socket) -> None:
        """Send the held replies, to the controller on ``work`` and to each client on
        ``direct``: alone as a ``reply``, together as ``replies``.

        Replies to a client whose buffers are large go to it through the hub instead,
        named in the header (``CLIENT``), if the hub takes their frames: the hub keeps
        a copy of every direct reply for its records, and the device's copy would
        cross to it from the direct relay, the bytes moved once more; on the work
        connection they reach it once, and it passes on the frames it keeps."""
        if not self.held:
            return
        for to, replies in self.replies.items():
            header, payload, buffers = self._message(replies)
            if to is not None and self._through_hub(buffers):
                header = {**header, CLIENT: to}
                to = None
            if to is None:
                send_frames(work, self.session.serialize(header, payload, buffers))
            else:  # through the device: large buffers in chunks
                for frames in self.session.serialize_parts(header, payload, buffers):
                    send_frames(direct, [to, *frames])
        self.replies = {}
        self.held = 0
        self.nbytes = 0

    def _through_hub(self, buffers: list[Any]) -> bool:
        """Whether a client's reply with these buffers goes through the hub: they would
        travel in chunks through the device, and the hub takes each of them whole."""
        if protocol.nbytes(buffers) <= protocol.CHUNK_ABOVE:
            return False
        return not self.max_frame or all(protocol.nbytes((b,)) <= self.max_frame for b in buffers)

    def _fitting(self, reply: Reply, to: bytes | None) -> Reply:
        """The reply, or an error in its place if one of its frames is too large (a
        client's reply goes through the direct device, which takes buffers in chunks)."""
        header, payload, buffers = reply
        size = 0
        for frames in (payload,) if to is not None else (payload, buffers):
            for f in frames:  # a plain loop, bytes by len: this runs for every reply
                n = len(f) if type(f) is bytes else memoryview(f).nbytes
                if n > size:
                    size = n
        if size <= self.max_frame:
            return reply
        evalue = (
            f"the result has a frame of {size} bytes, more than the controller takes "
            f"({self.max_frame}, `par controller --max-message-bytes`): return it from a "
            "DirectView (it travels in chunks), or raise the limit"
        )
        content = {"ename": "ValueError", "evalue": evalue, "traceback": ""}
        header = {k: v for k, v in header.items() if k != PUBLISHED}  # gone with the payload
        header[STATUS], header[ENAME] = "error", "ValueError"
        return header, [protocol.encode(content)], []

    @staticmethod
    def _message(replies: list[Reply]) -> Reply:
        """One message of held replies: a ``reply``, or ``replies`` with several."""
        return replies[0] if len(replies) == 1 else join_replies(replies)


def main(
    connection_file: str,
    timeout: float = 30.0,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    controller_timeout: float = CONTROLLER_TIMEOUT,
) -> int:
    """Run an engine against the controller described by a connection file."""
    from .. import connection

    info = connection.load(connection_file)  # a missing or garbled file fails at once
    engine = Engine(info, output_limit=output_limit, controller_timeout=controller_timeout)
    log.info("engine pid %d connecting to %s", os.getpid(), info.control_url)
    engine.run(registration_timeout=timeout)
    return 0
