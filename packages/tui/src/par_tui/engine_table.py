"""The engine table: one row per engine, sortable and filterable.

Rows are positions, not engines: the table's first row shows whichever
engine sorts first. A new snapshot or another order then changes only the
cells whose text changed, and a row's cells are made again only when its
engine changed, so a thousand engines sorted by a column that moves every
second cost a few cell updates, not a rebuilt table. The order shown is
:attr:`EngineTable.order`; the task stream's lanes follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input
from textual.widgets.data_table import ColumnKey

from . import format
from .state import EngineRow, Snapshot

STATE_ORDER = {"busy": 0, "up": 1, "registering": 2, "lost": 3, "stopped": 4, "gone": 5}
STATE_STYLE = {
    "busy": "bold yellow",
    "up": "green",
    "registering": "yellow",
    "lost": "bold red",
    "stopped": "dim",
}
TASK_WIDTH = 20  # characters of a task's id and label shown


def _number(value: float | None) -> float:
    """Unknown sorts below every number."""
    return float("-inf") if value is None else value


@dataclass(frozen=True)
class Column:
    """A column: its key, title, the order it sorts rows in, and its first direction."""

    key: str
    title: str
    sort: Callable[[EngineRow, float], Any]
    descending: bool  # numbers sort biggest first: the busiest, slowest, failing on top


COLUMNS = (
    Column("id", "id", lambda r, now: r.id, False),
    Column("host", "host", lambda r, now: r.host, False),
    Column("pid", "pid", lambda r, now: r.pid, False),
    Column("launcher", "launcher", lambda r, now: r.launcher, False),
    # busy engines first, the one whose task has run longest (a straggler) on top
    Column("state", "state", lambda r, now: (STATE_ORDER.get(r.state, 9), -_ran(r, now)), False),
    Column("task", "task", lambda r, now: format.task(r.task, r.label) if r.task else "~", False),
    Column("queue", "queue", lambda r, now: r.queue, True),
    Column("done", "done", lambda r, now: r.completed, True),
    Column("failed", "fail", lambda r, now: r.failed, True),
    Column("busy", "busy", lambda r, now: _number(r.busy), True),
    Column("mean", "mean", lambda r, now: _number(r.mean), True),
    Column("cpu", "cpu%", lambda r, now: _number(r.cpu), True),
    Column("mem", "mem", lambda r, now: _number(r.rss), True),
    Column("hb", "hb", lambda r, now: _number(r.heartbeat), True),
)
BY_KEY = {c.key: c for c in COLUMNS}


def _ran(r: EngineRow, now: float) -> float:
    """How long the engine's current task has run (0 without one)."""
    return 0.0 if r.task_started is None else max(now - r.task_started, 0.0)


def _cells(r: EngineRow, now: float) -> tuple[Text, ...]:
    """The table cells of one engine."""
    dim = "" if r.alive else "dim"
    state = r.state if r.task_started is None else f"busy {format.duration(_ran(r, now))}"
    return (
        Text(str(r.id), style=dim, justify="right"),
        Text(r.host, style=dim),
        Text(str(r.pid), style=dim, justify="right"),
        Text(r.launcher, style=dim),
        Text(state, style=STATE_STYLE.get(r.state, "dim")),
        Text(
            format.task(r.task, r.label)[:TASK_WIDTH] if r.task else "-",
            style="yellow" if r.task else "dim",
        ),
        Text(str(r.queue), style=dim, justify="right"),
        Text(str(r.completed), style=dim or "green", justify="right"),
        Text(str(r.failed), style="red" if r.failed else "dim", justify="right"),
        Text("-" if r.busy is None else f"{r.busy:.0%}", style=dim, justify="right"),
        Text(format.duration(r.mean), style=dim, justify="right"),
        Text("-" if r.cpu is None else str(r.cpu), style=dim, justify="right"),
        Text(format.size(r.rss), style=dim, justify="right"),
        Text(
            "-" if r.heartbeat is None else ("<1s" if r.heartbeat < 1 else f"{r.heartbeat}s"),
            style="bold red" if r.heartbeat is not None and r.heartbeat > 5 else dim,
            justify="right",
        ),
    )


def matches(r: EngineRow, text: str) -> bool:
    """True if any of the row's words (id, host, pid, launcher, state, task) contains ``text``."""
    words = (str(r.id), r.host, str(r.pid), r.launcher, r.state)
    words += format.task_words(r.task, r.label)
    return any(text in w.lower() for w in words)


def ordered(
    rows: tuple[EngineRow, ...], column: str, reverse: bool, text: str, now: float
) -> list[EngineRow]:
    """The rows matching the filter ``text``, live engines first, each part in column order."""
    text = text.strip().lower()
    shown = [r for r in rows if not text or matches(r, text)]
    sort = BY_KEY[column].sort
    shown.sort(key=lambda r: sort(r, now), reverse=reverse)
    shown.sort(key=lambda r: not r.alive)  # engines that left are history: below the others
    return shown


class EngineTable(Vertical):
    """The engines, with a filter box (``/``) and a sort column (``s``, or click a header)."""

    DEFAULT_CSS = """
    EngineTable {
        height: auto;
        max-height: 50%;
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
        Binding("slash", "filter", "Filter", tooltip="filter engines by id, host, state, task…"),
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

    class Ordered(Message):
        """The engines shown, or their order, changed."""

        def __init__(self, order: tuple[int, ...]) -> None:
            super().__init__()
            self.order = order

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: list[tuple[EngineRow, tuple[Text, ...]]] = []  # per position
        self._order: tuple[int, ...] = ()

    def compose(self) -> ComposeResult:
        """A hidden filter box above the table."""
        yield Input(
            placeholder="filter: id, host, pid, launcher, state, task or label", id="filter"
        )
        table: DataTable[Any] = DataTable(cursor_type="row", zebra_stripes=True, id="engine-rows")
        for c in COLUMNS:
            table.add_column(self._title(c), key=c.key)
        yield table

    @property
    def order(self) -> tuple[int, ...]:
        """Ids of the engines shown, in display order."""
        return self._order

    @property
    def rows(self) -> list[int]:
        """Ids of the engines shown, in display order (a list, for tests)."""
        return list(self._order)

    @property
    def highlighted(self) -> int | None:
        """The engine under the cursor now (not when the last highlight message was read)."""
        table = self.query_one(DataTable)
        row = table.cursor_row
        if not self._shown or not 0 <= row < len(self._shown):
            return None
        return self._shown[row][0].id

    def _title(self, column: Column) -> Text:
        """A column's title, with an arrow on the sort column (room kept for it on every one)."""
        if column.key != self.sort_column:
            return Text(column.title + " ")
        arrow = "▼" if self.sort_reverse else "▲"
        return Text.assemble((column.title, "bold underline"), (arrow, "bold cyan"))

    def watch_snapshot(self) -> None:
        """Show the new engine rows."""
        self._refresh_rows()

    def watch_sort_column(self) -> None:
        """Re-order the rows and mark the column."""
        self._mark_sort()
        self._refresh_rows()

    def watch_sort_reverse(self) -> None:
        """Re-order the rows and turn the column's arrow."""
        self._mark_sort()
        self._refresh_rows()

    def watch_filter_text(self) -> None:
        """Hide rows that do not match."""
        self._refresh_rows()

    def _mark_sort(self) -> None:
        if not self.is_mounted:
            return
        table = self.query_one(DataTable)
        for c in COLUMNS:
            table.columns[ColumnKey(c.key)].label = self._title(c)
        table.refresh()

    def _refresh_rows(self) -> None:
        snap = self.snapshot
        if not self.is_mounted or snap is None:
            return
        column, reverse = self.sort_column, self.sort_reverse
        rows = ordered(snap.engines, column, reverse, self.filter_text, snap.now)
        table = self.query_one(DataTable)
        at = table.cursor_row
        selected = self._shown[at][0].uuid if 0 <= at < len(self._shown) else None
        widths = {c.key: table.columns[ColumnKey(c.key)].content_width for c in COLUMNS}
        for i, row in enumerate(rows):
            if i < len(self._shown):
                old_row, old = self._shown[i]
                if old_row == row and old_row.task_started is None:
                    continue  # unchanged (a running task's clock moves, so its row does too)
                cells = _cells(row, snap.now)
                for c, cell, was in zip(COLUMNS, cells, old, strict=True):
                    if cell != was:
                        # Widening a column is cheap; narrowing one measures the whole column.
                        wider = cell.cell_len > widths[c.key]
                        table.update_cell(str(i), c.key, cell, update_width=wider)
                self._shown[i] = (row, cells)
            else:
                cells = _cells(row, snap.now)
                table.add_row(*cells, key=str(i))
                self._shown.append((row, cells))
        while len(self._shown) > len(rows):
            self._shown.pop()
            table.remove_row(str(len(self._shown)))
        # Keep the cursor on the engine it was on, wherever that engine sorted to.
        uuids = [row.uuid for row, _ in self._shown]
        if selected in uuids and uuids.index(selected) != at:
            table.move_cursor(row=uuids.index(selected), animate=False)
        order = tuple(r.id for r in rows)
        if order != self._order:
            self._order = order
            self.post_message(self.Ordered(order))

    @on(DataTable.RowHighlighted, "#engine-rows")
    def _on_highlight(self, event: DataTable.RowHighlighted) -> None:
        # The engine under the cursor now: rows may have moved since the event was posted.
        engine_id = self.highlighted
        if engine_id is not None:
            self.post_message(self.Selected(engine_id))

    @on(DataTable.HeaderSelected, "#engine-rows")
    def _on_header(self, event: DataTable.HeaderSelected) -> None:
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self._sort_by(column)

    def _sort_by(self, column: str) -> None:
        self.sort_reverse = BY_KEY[column].descending
        self.sort_column = column

    def action_sort(self) -> None:
        """Sort by the next column."""
        keys = [c.key for c in COLUMNS]
        self._sort_by(keys[(keys.index(self.sort_column) + 1) % len(keys)])

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
