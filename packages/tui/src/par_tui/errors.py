"""The errors view: failed tasks, newest first, searchable; Enter opens one's traceback.

The cursor follows the newest error while it is on the first row (and the
tab opens there), so Enter shows what just failed; moved down, it stays on
the error it is on while new ones arrive above.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import var
from textual.widgets import DataTable, Input

from . import format
from .fixed_text import FixedText
from .state import ErrorRecord, Snapshot


def matches(rec: ErrorRecord, text: str) -> bool:
    """True if the error's task id, label, engine, method, exception or message contains
    ``text``."""
    words = (
        *format.task_words(rec.id, rec.label),
        "" if rec.engine is None else str(rec.engine),
        rec.method,
        rec.ename,
        rec.evalue,
    )
    return any(text in w.lower() for w in words)


class ErrorList(Vertical):
    """Failed tasks: when, engine, task, method, exception type and message."""

    DEFAULT_CSS = """
    ErrorList {
        height: 1fr;
    }
    ErrorList > #error-count {
        height: 1;
        padding: 0 1;
        color: $text-muted;
    }
    ErrorList > Input {
        display: none;
        height: 3;
    }
    ErrorList.-filtering > Input {
        display: block;
    }
    ErrorList > DataTable {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("slash", "filter", "Search", tooltip="search errors by task id, label, exception…"),
        Binding("escape", "clear_filter", "Clear search", show=False, tooltip="clear the search"),
    ]

    snapshot: var[Snapshot | None] = var(None)
    filter_text: var[str] = var("")

    class Open(Message):
        """The user chose an error to read in full."""

        def __init__(self, record: ErrorRecord) -> None:
            super().__init__()
            self.record = record

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._records: dict[str, ErrorRecord] = {}
        self._shown: tuple[tuple[ErrorRecord, ...], str] = ((), "")

    def compose(self) -> ComposeResult:
        """A count line, a hidden search box, the table."""
        yield FixedText(id="error-count")
        yield Input(placeholder="search: task id, label, engine, exception or message", id="search")
        table: DataTable[Any] = DataTable(cursor_type="row", zebra_stripes=True, id="error-rows")
        for key, title in (
            ("time", "time"),
            ("engine", "engine"),
            ("task", "task"),
            ("method", "method"),
            ("ename", "exception"),
            ("evalue", "message"),
        ):
            table.add_column(title, key=key)
        yield table

    def on_mount(self) -> None:
        """Show what is there already."""
        self._show()

    def watch_snapshot(self) -> None:
        """Show new errors (only when the list changed)."""
        self._show()

    def watch_filter_text(self) -> None:
        """Show only the errors that match."""
        self._show()

    def on_show(self) -> None:
        """The tab opens on the newest error."""
        self.newest()

    def newest(self) -> None:
        """Put the cursor on the newest error."""
        table = self.query_one(DataTable)
        if table.row_count:
            table.move_cursor(row=0, animate=False)

    def _show(self) -> None:
        snap = self.snapshot
        if not self.is_mounted or snap is None:
            return
        self._count(snap)
        text = self.filter_text.strip().lower()
        if (snap.errors, text) == self._shown:
            return
        errors = [r for r in snap.errors if not text or matches(r, text)]
        table = self.query_one(DataTable)
        selected = None
        if table.row_count and table.cursor_row > 0:  # on the first row: follow the newest
            selected = table.coordinate_to_cell_key(table.cursor_coordinate)[0].value
        table.clear()
        self._records = {}
        for rec in errors:
            key = f"{rec.id}:{rec.time}"
            self._records[key] = rec
            table.add_row(
                Text(time.strftime("%H:%M:%S", time.localtime(rec.time)), style="dim"),
                Text("-" if rec.engine is None else str(rec.engine), justify="right"),
                Text(format.task(rec.id, rec.label)),
                rec.method,
                Text(rec.ename, style="bold red"),
                Text(rec.evalue.splitlines()[0][:200] if rec.evalue else ""),
                key=key,
            )
        keys = list(self._records)
        table.move_cursor(row=keys.index(selected) if selected in keys else 0, animate=False)
        self._shown = (snap.errors, text)

    def _count(self, snap: Snapshot) -> None:
        """Say how many tasks failed (the controller's count) and how many are listed."""
        n = len(snap.errors)
        line = f"{snap.failed} failed tasks, newest first"
        if snap.failed > n:
            line += f" (the newest {n} are kept)"
        self.query_one("#error-count", FixedText).show(line)

    @property
    def records(self) -> list[ErrorRecord]:
        """The errors shown, in display order."""
        return list(self._records.values())

    def action_filter(self) -> None:
        """Show the search box and type into it."""
        self.add_class("-filtering")
        self.query_one(Input).focus()

    def action_clear_filter(self) -> None:
        """Hide the search box and list every error."""
        self.query_one(Input).value = ""
        self.remove_class("-filtering")
        self.query_one(DataTable).focus()

    @on(Input.Changed, "#search")
    def _on_search_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#search")
    def _on_search_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            self.remove_class("-filtering")
        self.query_one(DataTable).focus()

    @on(DataTable.RowSelected, "#error-rows")
    def _on_selected(self, event: DataTable.RowSelected) -> None:
        record = self._records.get(str(event.row_key.value))
        if record is not None:
            self.post_message(self.Open(record))
