"""Capturing what a task outputs on an engine: stdout, stderr, rich displays, published data.

Output written or displayed while a task runs goes to that task's buffer,
capped in size (with a notice when the cap cuts it). Each display remembers
how much stdout and stderr came before it, so a client can show everything
in the order it happened. The control thread streams what accumulates
during long tasks; the remainder rides in the task's reply, so a short
task's output costs no extra message.

Published data (:mod:`par.datapub`) is not capped: it is sent as soon as
the control thread can, and an unsent publication is dropped when a newer
one replaces all its keys, so a task publishing faster than the link can
carry holds only its latest values.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import Any, TextIO

from .. import protocol

DEFAULT_OUTPUT_LIMIT = (
    1 << 20
)  # characters per task; keeps reply headers far below MAX_HEADER_BYTES

# A display as it travels: [{"data": {mime: ...}, "metadata": {...}}, stdout position,
# stderr position] (the positions: characters of each stream the task wrote before it).
Display = list[Any]
# A publication waiting to be sent: its keys, its pickle and the pickle's buffers.
Publication = tuple[frozenset[Any], bytes, list[bytes]]


class TaskOutput:
    """The captured output of one task, shared by the engine's two threads."""

    # Created on first use: most tasks display and publish nothing.
    _displays: list[Display] | None = None
    _result: dict[str, Any] | None = None
    _data: list[Publication] | None = None
    execution_count: int | None = None  # set for execute requests
    _sent_stdout = 0
    _sent_stderr = 0

    def __init__(
        self, msg_id: str, limit: int = DEFAULT_OUTPUT_LIMIT, client: bytes | None = None
    ) -> None:
        self.msg_id = msg_id
        self.client = client  # whose task it is, named in what it streams
        self.limit = limit
        self.size = 0
        self.truncated = False
        self.streamed = 0
        self.closed = False
        self._pending: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._lock = threading.Lock()

    def _cut(self, name: str = "stdout") -> None:
        """Stop capturing (the cap is reached): say so at the end of a stream."""
        notice = f"\n[par: output of task {self.msg_id} truncated at {self.limit} characters]\n"
        self._pending[name].append(notice)
        self.size += len(notice)
        self.truncated = True

    def write(self, name: str, text: str) -> bool:
        """Add text to a stream; False once the task is over."""
        with self._lock:
            if self.closed:
                return False
            if self.truncated:
                return True
            if self.size + len(text) > self.limit:
                keep = max(self.limit - self.size, 0)
                self._pending[name].append(text[:keep])
                self.size += keep
                self._cut(name)
                return True
            self.size += len(text)
            self._pending[name].append(text)
            return True

    def _fits(self, entry: dict[str, Any]) -> bool:
        """Count a display's encoded size against the cap; False (and cut) if it does not fit.

        Raises TypeError if the display holds anything but plain data.
        """
        try:
            size = len(protocol.encode(entry))
        except TypeError as exc:
            raise TypeError(
                f"display data must be plain data (str, bytes, numbers, lists, dicts): {exc}"
            ) from None
        if self.size + size > self.limit:
            self._cut()
            return False
        self.size += size
        return True

    def add_display(self, entry: dict[str, Any]) -> bool:
        """Add a display (``{"data": {mime: ...}, "metadata": {...}}``); False once the task
        is over. Raises TypeError if it holds anything but plain data."""
        with self._lock:
            if self.closed:
                return False
            if self.truncated or not self._fits(entry):
                return True
            stdout = self._sent_stdout + sum(map(len, self._pending["stdout"]))
            stderr = self._sent_stderr + sum(map(len, self._pending["stderr"]))
            if self._displays is None:
                self._displays = []
            self._displays.append([entry, stdout, stderr])
            return True

    def set_result(self, entry: dict[str, Any]) -> None:
        """Keep the display of an execute request's final value (within the cap)."""
        with self._lock:
            if not self.truncated and self._fits(entry):
                self._result = entry

    def publish(self, keys: frozenset[Any], data: bytes, buffers: list[bytes]) -> bool:
        """Queue published data for sending; False once the task is over."""
        with self._lock:
            if self.closed:
                return False
            waiting = [p for p in self._data or () if not p[0] <= keys]
            waiting.append((keys, data, buffers))
            self._data = waiting
            return True

    def take(self) -> tuple[dict[str, str], list[Display], list[Publication]]:
        """Take what has accumulated since the last take, for streaming: text by stream,
        displays, publications. Each non-empty part is one message. Nothing once the task
        is over: its reply carries the rest."""
        with self._lock:
            if self.closed:
                return {}, [], []
            out = {k: "".join(v) for k, v in self._pending.items() if v}
            for v in self._pending.values():
                v.clear()
            self._sent_stdout += len(out.get("stdout", ""))
            self._sent_stderr += len(out.get("stderr", ""))
            displays, self._displays = self._displays or [], None
            data, self._data = self._data or [], None
            self.streamed += len(out) + bool(displays) + len(data)
            return out, displays, data

    def finish(self) -> tuple[dict[str, Any], int, list[Publication]]:
        """Close the task's output; return the reply header entries of the remainder
        (``o``, ``r``, ``dp``, ``er``, ``ec``), the count of messages streamed, and the
        publications not yet sent."""
        with self._lock:
            self.closed = True
            pending = self._pending.items()
            rest: dict[str, Any] = {_REPLY_KEYS[k]: "".join(v) for k, v in pending if v}
            if self._displays:
                rest["dp"] = self._displays
            if self._result is not None:
                rest["er"] = self._result
            if self.execution_count is not None:
                rest["ec"] = self.execution_count
            return rest, self.streamed, self._data or []


_REPLY_KEYS = {"stdout": "o", "stderr": "r"}


class CaptureStream(io.TextIOBase):
    """A replacement for sys.stdout/sys.stderr that routes to the running task."""

    def __init__(self, name: str, original: TextIO, capture: Capture) -> None:
        self.name = name
        self.original = original
        self.capture = capture

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        current = self.capture.current
        if current is None or not current.write(self.name, text):
            self.original.write(text)
        return len(text)

    def flush(self) -> None:
        self.original.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.original.fileno()


class Capture:
    """Installs the capturing streams and tracks the task being captured."""

    def __init__(self, limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.current: TaskOutput | None = None

    def install(self) -> None:
        """Replace sys.stdout and sys.stderr for the life of the engine."""
        global _installed
        sys.stdout = CaptureStream("stdout", sys.__stdout__ or sys.stdout, self)
        sys.stderr = CaptureStream("stderr", sys.__stderr__ or sys.stderr, self)
        _installed = self

    def start(self, msg_id: str, client: bytes | None = None) -> TaskOutput:
        """Begin capturing a task's output (``client``: whose task it is)."""
        self.current = TaskOutput(msg_id, self.limit, client)
        return self.current

    def stop(self) -> tuple[dict[str, Any], int, list[Publication]]:
        """End capturing; return what :meth:`TaskOutput.finish` returns."""
        out = self.current
        self.current = None
        if out is None:
            return {}, 0, []
        return out.finish()


_installed: Capture | None = None


def running_task() -> TaskOutput | None:
    """The output of the task running in this process, or None (no task, or not an engine)."""
    return _installed.current if _installed is not None else None
