"""The errors view: recent failed tasks, newest first; Enter opens one's traceback."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from . import format
from .state import ErrorRecord, Snapshot


class ErrorList(DataTable[Any]):
    """Failed tasks: when, engine, task, exception type and message."""

    DEFAULT_CSS = """
    ErrorList {
        height: 1fr;
    }
    """

    snapshot: reactive[Snapshot | None] = reactive(None)

    class Open(Message):
        """The user chose an error to read in full."""

        def __init__(self, record: ErrorRecord) -> None:
            super().__init__()
            self.record = record

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._records: dict[str, ErrorRecord] = {}
        self._shown: tuple[ErrorRecord, ...] = ()

    def on_mount(self) -> None:
        """Add the columns."""
        self.add_column("time", key="time")
        self.add_column("engine", key="engine")
        self.add_column("task", key="task")
        self.add_column("method", key="method")
        self.add_column("exception", key="ename")
        self.add_column("message", key="evalue")
        self._show()

    def watch_snapshot(self) -> None:
        """Show new errors (only when the list changed, so the cursor stays put)."""
        self._show()

    def _show(self) -> None:
        if not self.is_mounted or self.snapshot is None or self.snapshot.errors == self._shown:
            return
        errors = self.snapshot.errors
        selected = None
        if self.row_count:
            selected = self.coordinate_to_cell_key(self.cursor_coordinate)[0].value
        self.clear()
        self._records = {}
        for rec in errors:
            key = f"{rec.id}:{rec.time}"
            self._records[key] = rec
            self.add_row(
                Text(time.strftime("%H:%M:%S", time.localtime(rec.time)), style="dim"),
                Text("-" if rec.engine is None else str(rec.engine), justify="right"),
                Text(format.short_id(rec.id), style="dim"),
                rec.method,
                Text(rec.ename, style="bold red"),
                rec.evalue.splitlines()[0][:200] if rec.evalue else "",
                key=key,
            )
        keys = list(self._records)
        if selected in keys:
            self.move_cursor(row=keys.index(selected), animate=False)
        self._shown = errors

    @property
    def records(self) -> list[ErrorRecord]:
        """The errors shown, in display order."""
        return list(self._records.values())

    @on(DataTable.RowSelected)
    def _on_selected(self, event: DataTable.RowSelected) -> None:
        record = self._records.get(str(event.row_key.value))
        if record is not None:
            self.post_message(self.Open(record))
