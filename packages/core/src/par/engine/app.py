"""The engine process: registers, then runs requests one at a time.

The main thread owns the work connection and runs user code; the control
thread (:mod:`par.engine.control`) answers the controller meanwhile.
SIGINT interrupts a running task (it fails with KeyboardInterrupt) and is
ignored between tasks, so an interrupt never kills the engine; SIGTERM
stops it cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import traceback
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import zmq

from .. import protocol, serialize
from ..connection import ConnectionInfo
from ..errors import RemoteError
from ..protocol import Message, Session, recv_frames, send_frames
from . import namespace
from .capture import DEFAULT_OUTPUT_LIMIT, Capture
from .control import ControlThread

log = logging.getLogger("par.engine")

_OWN_FILES = str(Path(__file__).parent)
FUNCTION_CACHE_SIZE = 128


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


class Engine:
    """One engine: a namespace, a work connection and a control thread."""

    def __init__(
        self,
        info: ConnectionInfo,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        controller_timeout: float = 60.0,
    ) -> None:
        self.info = info
        self.session = Session(info.key_bytes)
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

    # ---- signals ---------------------------------------------------------------------------

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self.running is not None:
            raise KeyboardInterrupt

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        raise SystemExit(0)

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

    def _run(self, msg: Message) -> Any:
        h = msg.header
        if msg.kind == "execute":
            namespace.execute(bytes(msg.payload[0].buffer).decode())
            return None
        f = self._function(h["f"], msg.payload[0])
        args, kwargs = serialize.loads(msg.payload[1], msg.buffers)
        if h.get("mp"):
            return list(map(f, *args))
        return f(*args, **kwargs)

    def _my_id(self, h: dict[str, Any]) -> str:
        if "id" in h:
            return str(h["id"])
        return str(h["ids"][h["tg"].index(self.control.engine_id)])

    def handle(self, sock: zmq.Socket, msg: Message) -> None:
        """Run one request and send its reply."""
        h = msg.header
        mid = self._my_id(h)
        reply: dict[str, Any] = {
            "t": "reply",
            "id": mid,
            "e": self.control.engine_id,
            "m": msg.kind,
        }
        payload: list[Any] = []
        buffers: list[Any] = []
        if mid in self.control.aborted:
            self.control.aborted.discard(mid)
            reply.update(st="aborted", en="TaskAborted")
            content = {"ename": "TaskAborted", "evalue": "aborted before it started"}
            payload = [protocol.encode(content)]
            send_frames(sock, self.session.serialize(reply, payload))
            return
        self.capture.start(mid)
        reply["ts"] = time.time()
        self.control.task_started = reply["ts"]
        self.control.running_task = mid
        try:
            self.running = mid
            try:
                result = self._run(msg)
            finally:
                self.running = None
            data, buffers = serialize.dumps(result)
            payload = [data]
            reply["st"] = "ok"
        except (Exception, KeyboardInterrupt) as exc:
            content = error_content(exc)
            reply.update(st="error", en=content["ename"])
            payload, buffers = [protocol.encode(content)], []
        reply["tc"] = time.time()
        self.control.running_task = None
        self.control.task_started = None
        rest, streamed = self.capture.stop()
        if "stdout" in rest:
            reply["o"] = rest["stdout"]
        if "stderr" in rest:
            reply["r"] = rest["stderr"]
        if streamed:
            reply["ns"] = streamed
        send_frames(sock, self.session.serialize(reply, payload, buffers))

    # ---- the loop ---------------------------------------------------------------------------

    def run(self, registration_timeout: float = 30.0) -> None:
        """Register, then serve requests until stopped."""
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self.capture.install()
        self.control.start()
        work = self.ctx.socket(zmq.DEALER)
        work.setsockopt(zmq.ROUTING_ID, self.ident)
        work.setsockopt(zmq.LINGER, 2000)
        self.info.secure(work)
        try:
            if not self.control.registered.wait(registration_timeout):
                raise SystemExit(
                    f"par engine: no answer from the controller at {self.info.control_url} "
                    f"within {registration_timeout:.0f} s; is the cluster running?"
                )
            work.connect(self.info.engine_url)
            log.info("registered as engine %s", self.control.engine_id)
            self._serve(work)
        finally:
            self.control.closing.set()
            self.control.join(timeout=2)
            work.close()
            self.ctx.destroy(linger=1000)
            if self.control.lost_reason:
                log.error("par engine: stopping: %s", self.control.lost_reason)

    def _serve(self, work: zmq.Socket) -> None:
        session = self.session
        while True:
            if self.control.ready_needed.is_set():
                self.control.ready_needed.clear()
                work.send_multipart(session.serialize({"t": "ready"}))
            try:
                frames = recv_frames(work, block=False)
            except zmq.Again:
                work.poll(500)
                continue
            msg = session.parse(frames)
            if msg is None:
                log.warning("dropped an unauthenticated or malformed request")
                continue
            if msg.kind in ("apply", "execute"):
                try:
                    self.handle(work, msg)
                except (KeyError, TypeError, ValueError, IndexError) as exc:
                    log.warning("dropped a malformed request: %s", exc)


def main(
    connection_file: str,
    timeout: float = 30.0,
    output_limit: int = DEFAULT_OUTPUT_LIMIT,
    controller_timeout: float = 60.0,
) -> int:
    """Run an engine against the controller described by a connection file."""
    from .. import connection

    info = connection.load(connection_file, timeout=timeout)
    engine = Engine(info, output_limit=output_limit, controller_timeout=controller_timeout)
    log.info("engine pid %d connecting to %s", os.getpid(), info.control_url)
    engine.run(registration_timeout=timeout)
    return 0
