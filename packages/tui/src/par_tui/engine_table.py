"""The engine table: one row per engine, sortable and filterable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input

from . import format
from .state import EngineRow, Snapshot

# (key, title, sort key): the sort key orders rows when that column is chosen.
COLUMNS: tuple[tuple[str, str, Callable[[EngineRow], Any]], ...] = (
    ("id", "id", lambda r: r.id),
    ("host", "host", lambda r: r.host),
    ("pid", "pid", lambda r: r.pid),
    ("launcher", "launcher", lambda r: r.launcher),
    ("state", "state", lambda r: r.state),
    ("task", "task", lambda r: r.task or ""),
    ("queue", "queue", lambda r: r.queue),
    ("done", "done", lambda r: r.completed),
    ("failed", "failed", lambda r: r.failed),
    ("cpu", "cpu %", lambda r: r.cpu or 0.0),
    ("mem", "memory", lambda r: r.rss or 0),
    ("hb", "heartbeat", lambda r: r.heartbeat_age if r.heartbeat_age is not None else 1e9),
)
SORT_KEYS = {key: sort for key, _, sort in COLUMNS}
STATE_STYLE = {"up": "green", "registering": "yellow", "lost": "bold red", "stopped": "dim"}


def _cells(r: EngineRow) -> tuple[Any, ...]:
    """The table cells of one engine."""
    dim = "" if r.alive else "dim"
    hb = r.heartbeat_age
    return (
        Text(str(r.id), style=dim, justify="right"),
        Text(r.host, style=dim),
        Text(str(r.pid), style=dim, justify="right"),
        Text(r.launcher, style=dim),
        Text(r.state, style=STATE_STYLE.get(r.state, "dim")),
        Text(format.short_id(r.task), style="yellow" if r.task else "dim"),
        Text(str(r.queue), style=dim, justify="right"),
        Text(str(r.completed), style=dim or "green", justify="right"),
        Text(str(r.failed), style="red" if r.failed else "dim", justify="right"),
        Text("-" if r.cpu is None else f"{r.cpu:.0f}", style=dim, justify="right"),
        Text(format.size(r.rss), style=dim, justify="right"),
        Text(
            format.duration(hb),
            style="bold red" if hb is not None and hb > 5 else dim,
            justify="right",
        ),
    )


def _matches(r: EngineRow, text: str) -> bool:
    """True if any of the row's words contains the filter text."""
    words = (str(r.id), r.host, str(r.pid), r.launcher, r.state, r.task or "")
    return any(text in w.lower() for w in words)


class EngineTable(Vertical):
    """The engines, with a filter box (``/``) and a sort column (``s``, or click a header)."""

    DEFAULT_CSS = """
    EngineTable {
        height: auto;
        max-height: 60%;
    }
    EngineTable > Input {
        display: none;
        height: 3;
    }
    EngineTable.-filtering > Input {
        display: block;
    }
    EngineTable > DataTable {
        height: auto;
        max-height: 100%;
    }
    """

    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="filter engines by id, host, pid, state…"),
        Binding("s", "sort", "Sort", tooltip="sort by the next column (or click a header)"),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="clear the filter"),
    ]

    snapshot: reactive[Snapshot | None] = reactive(None)
    sort_column: reactive[str] = reactive("id")
    sort_reverse: reactive[bool] = reactive(False)
    filter_text: reactive[str] = reactive("")

    class Selected(Message):
        """The cursor moved to an engine."""

        def __init__(self, engine_id: int) -> None:
            super().__init__()
            self.engine_id = engine_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: list[tuple[str, tuple[Any, ...]]] = []
        self._ids: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        """A hidden filter box above the table."""
        yield Input(placeholder="filter: id, host, pid, launcher, state or task", id="filter")
        table: DataTable[Any] = DataTable(cursor_type="row", zebra_stripes=True, id="engine-rows")
        for key, title, _ in COLUMNS:
            table.add_column(title, key=key)
        yield table

    @property
    def rows(self) -> list[int]:
        """Ids of the engines shown, in display order."""
        return [self._ids[key] for key, _ in self._shown]

    def watch_snapshot(self) -> None:
        """Show the new engine rows."""
        self._refresh_rows()

    def watch_sort_column(self) -> None:
        """Re-order the rows."""
        self._refresh_rows()

    def watch_sort_reverse(self) -> None:
        """Re-order the rows."""
        self._refresh_rows()

    def watch_filter_text(self) -> None:
        """Hide rows that do not match."""
        self._refresh_rows()

    def _refresh_rows(self) -> None:
        if not self.is_mounted or self.snapshot is None:
            return
        text = self.filter_text.strip().lower()
        rows = [r for r in self.snapshot.engines if not text or _matches(r, text)]
        # Engines still in the cluster come first whatever the sort: the gone ones are history.
        rows.sort(key=SORT_KEYS[self.sort_column], reverse=self.sort_reverse)
        rows.sort(key=lambda r: not r.alive)
        wanted = [(r.uuid, _cells(r)) for r in rows]
        table = self.query_one(DataTable)
        if [k for k, _ in wanted] == [k for k, _ in self._shown]:
            for (key, cells), (_, old) in zip(wanted, self._shown, strict=True):
                for (column, _, _), cell, was in zip(COLUMNS, cells, old, strict=True):
                    if cell != was:
                        table.update_cell(key, column, cell, update_width=True)
        else:
            selected = self._selected_key(table)
            table.clear()
            for key, cells in wanted:
                table.add_row(*cells, key=key)
            keys = [k for k, _ in wanted]
            if selected in keys:
                table.move_cursor(row=keys.index(selected), animate=False)
        self._shown = wanted
        self._ids = {r.uuid: r.id for r in rows}

    @staticmethod
    def _selected_key(table: DataTable[Any]) -> str | None:
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    @on(DataTable.RowHighlighted, "#engine-rows")
    def _on_highlight(self, event: DataTable.RowHighlighted) -> None:
        engine_id = self._ids.get(str(event.row_key.value))
        if engine_id is not None:
            self.post_message(self.Selected(engine_id))

    @on(DataTable.HeaderSelected, "#engine-rows")
    def _on_header(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = column
            self.sort_reverse = False

    def action_sort(self) -> None:
        """Sort by the next column."""
        keys = [key for key, _, _ in COLUMNS]
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)]
        self.sort_reverse = False
        self.notify(f"sorted by {self.sort_column}", timeout=1.5)

    def action_filter(self) -> None:
        """Show the filter box and type into it."""
        self.add_class("-filtering")
        self.query_one(Input).focus()

    def action_clear_filter(self) -> None:
        """Hide the filter box and show every engine."""
        box = self.query_one(Input)
        box.value = ""
        self.remove_class("-filtering")
        self.query_one(DataTable).focus()

    @on(Input.Changed, "#filter")
    def _on_filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _on_filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            self.remove_class("-filtering")
        self.query_one(DataTable).focus()
