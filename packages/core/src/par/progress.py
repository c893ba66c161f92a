"""Progress bars for waits: plain text in a terminal, tqdm or ipywidgets when installed.

``PAR_NONINTERACTIVE=1`` (as ipyparallel's ``IPP_NONINTERACTIVE``) turns bars and
live output off by default, for scripts and CI logs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, Protocol, TextIO


def noninteractive() -> bool:
    """True when ``PAR_NONINTERACTIVE`` asks for no progress bars or streamed output."""
    return os.environ.get("PAR_NONINTERACTIVE", "").lower() not in ("", "0", "false", "no")


class Bar(Protocol):
    """What a wait needs from a progress bar."""

    def update(self, done: int) -> None:
        """Show that ``done`` items are finished."""


class TextBar:
    """A one-line text bar, redrawn in place on a terminal, printed once at the end elsewhere."""

    def __init__(
        self, total: int, desc: str, stream: TextIO | None = None, width: int = 30
    ) -> None:
        self.total = total
        self.desc = desc
        self.stream = stream or sys.stdout
        self.width = width
        self.done = -1
        self.start = time.monotonic()
        self.live = _is_live(self.stream)

    def line(self) -> str:
        """The bar as text: ``desc [#####.....] 5/10 tasks 1.2s``."""
        done = max(self.done, 0)
        filled = self.width * done // self.total if self.total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        return f"{self.desc} [{bar}] {done}/{self.total} {time.monotonic() - self.start:.1f}s"

    def update(self, done: int) -> None:
        """Redraw if the count changed."""
        if done != self.done:
            self.done = done
            if self.live:
                self.stream.write("\r" + self.line())
                self.stream.flush()

    def close(self) -> None:
        """Leave the final state on its own line."""
        if self.live:
            self.stream.write("\r" + self.line() + "\n")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


class _NoBar:
    def update(self, done: int) -> None:
        pass


class _TqdmBar:
    def __init__(self, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="tasks")
        self.done = 0

    def update(self, done: int) -> None:
        if done > self.done:
            self.bar.update(done - self.done)
            self.done = done

    def close(self) -> None:
        self.bar.close()


def _is_live(stream: TextIO) -> bool:
    """True if ``\\r`` redraws in place: a terminal, or a Jupyter kernel's output."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) or "ipykernel" in sys.modules


@contextlib.contextmanager
def progress_bar(total: int, desc: str = "tasks", widget: bool | None = None) -> Iterator[Bar]:
    """A bar for ``total`` items: none if non-interactive, tqdm (a widget in Jupyter when
    ipywidgets is installed) unless ``widget=False`` or tqdm is missing, else text."""
    bar: Any
    if noninteractive():
        bar = _NoBar()
    elif widget is not False and importlib.util.find_spec("tqdm") is not None:
        bar = _TqdmBar(total, desc)
    else:
        bar = TextBar(total, desc)
    try:
        yield bar
    finally:
        close = getattr(bar, "close", None)
        if close is not None:
            close()
