"""Capturing a task's stdout and stderr on an engine.

Output written while a task runs goes to that task's buffer, capped in
size (with a notice when the cap cuts it). The control thread streams what
accumulates during long tasks; the remainder rides in the task's reply, so
a short task's output costs no extra message.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import TextIO

DEFAULT_OUTPUT_LIMIT = (
    1 << 20
)  # characters per task; keeps reply headers far below MAX_HEADER_BYTES


class TaskOutput:
    """The captured output of one task, shared by the engine's two threads."""

    def __init__(self, msg_id: str, limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self.msg_id = msg_id
        self.limit = limit
        self.size = 0
        self.truncated = False
        self.streamed = 0
        self.closed = False
        self._pending: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._lock = threading.Lock()

    def write(self, name: str, text: str) -> bool:
        """Add text to a stream; False once the task is over."""
        with self._lock:
            if self.closed:
                return False
            if self.truncated:
                return True
            if self.size + len(text) > self.limit:
                keep = max(self.limit - self.size, 0)
                text = text[:keep] + (
                    f"\n[par: output of task {self.msg_id} truncated at {self.limit} characters]\n"
                )
                self.truncated = True
            self.size += len(text)
            self._pending[name].append(text)
            return True

    def take(self) -> dict[str, str]:
        """Take what has accumulated since the last take, for streaming."""
        with self._lock:
            out = {k: "".join(v) for k, v in self._pending.items() if v}
            for v in self._pending.values():
                v.clear()
            if out:
                self.streamed += len(out)
            return out

    def finish(self) -> tuple[dict[str, str], int]:
        """Close the task's output; return the remainder and the count streamed."""
        with self._lock:
            self.closed = True
            out = {k: "".join(v) for k, v in self._pending.items() if v}
            return out, self.streamed


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
        sys.stdout = CaptureStream("stdout", sys.__stdout__ or sys.stdout, self)
        sys.stderr = CaptureStream("stderr", sys.__stderr__ or sys.stderr, self)

    def start(self, msg_id: str) -> TaskOutput:
        """Begin capturing a task's output."""
        self.current = TaskOutput(msg_id, self.limit)
        return self.current

    def stop(self) -> tuple[dict[str, str], int]:
        """End capturing; return the uncollected output and how many chunks were streamed."""
        out = self.current
        self.current = None
        if out is None:
            return {}, 0
        return out.finish()
