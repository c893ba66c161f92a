"""One failed task in full: where it ran, the exception, and the remote traceback."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from .state import ErrorRecord


class ErrorDetail(ModalScreen[None]):
    """The full remote traceback of a failed task."""

    DEFAULT_CSS = """
    ErrorDetail {
        align: center middle;
    }
    ErrorDetail > VerticalScroll {
        width: 90%;
        height: auto;
        max-height: 85%;
        border: thick $error 60%;
        background: $surface;
        padding: 0 1;
    }
    ErrorDetail #title {
        margin-bottom: 1;
    }
    """

    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        """Title, then the traceback text."""
        r = self.record
        when = time.strftime("%H:%M:%S", time.localtime(r.time))
        title = Text.assemble(
            (f"{r.ename}: ", "bold red"),
            (r.evalue, "bold"),
            "\n",
            (f"task {r.id}{f' ({r.label})' if r.label else ''}", "dim"),
            (f"  engine {r.engine}  {r.method}  at {when}", "dim"),
        )
        with VerticalScroll():
            yield Static(title, id="title")
            yield Static(
                Text(r.traceback or "(the engine sent no traceback)", style=""),
                id="traceback",
            )
        yield Footer()
