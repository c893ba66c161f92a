"""A bell one thread rings to wake another from its poll.

An idle engine's two threads, and a client's receiving thread, wait in
``zmq.Poller.poll`` for as long as nothing is due, rather than waking every
fraction of a second to look at flags another thread may have set: each
wake of an idle process costs a cold start, some 0.5 ms in a virtual
machine, and a thousand engines waking six times a second each took more
than a core doing nothing. What one thread tells the other stays in its
``threading.Event`` or attribute; the bell only ends the other's wait, so
it looks.

A bell is a pipe: its read end (:attr:`fd`) is polled beside the sockets,
and :meth:`ring` writes a byte to it, from any thread (a full pipe is a
bell already ringing).
"""

from __future__ import annotations

import contextlib
import os


class Bell:
    """A pipe to wake a thread that polls :attr:`fd` among its sockets."""

    def __init__(self) -> None:
        self.fd, self._write = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._write, False)

    def ring(self) -> None:
        """Wake the thread polling :attr:`fd` (or make its next poll return at once)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, b"\0")

    def clear(self) -> None:
        """Take the rings so far: the next poll waits again."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 4096):
                pass

    def close(self) -> None:
        """Close the pipe (a client's, when it closes: an engine's lasts its process)."""
        os.close(self.fd)
        os.close(self._write)
