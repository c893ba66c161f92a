"""The engine table: one row per engine, sortable and filterable.

The rows are drawn through Textual's line API (:class:`EngineRows`): a
snapshot only sorts and filters the rows, and only the lines on screen are
formatted, and redrawn when their text changed. A thousand engines sorted
by a column that moves every second cost what the thirty on screen cost.
The order shown is :attr:`EngineTable.order`; the task stream's lanes
follow it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input

from . import format
from .state import EngineRow, Snapshot

STATE_ORDER = {"busy": 0, "up": 1, "registering": 2, "lost": 3, "stopped": 4, "gone": 5}
STATE_STYLE = {
    "busy": Style(bold=True, color="yellow"),
    "up": Style(color="green"),
    "registering": Style(color="yellow"),
    "lost": Style(bold=True, color="red"),
}
DIM = Style(dim=True)
RUNNING = Style(color="yellow")
TASK_WIDTH = 20  # characters of a task's id and label shown
LATE = 2  # seconds without a heartbeat shown as such (engines beat every second)


def _number(value: float | None) -> float:
    """Unknown sorts below every number."""
    return float("-inf") if value is None else value


def _ran(r: EngineRow, now: float) -> float:
    """How long the engine's current task has run (0 without one)."""
    return 0.0 if r.task_started is None else max(now - r.task_started, 0.0)


@dataclass(frozen=True)
class Column:
    """A column: its key, title, width, the order it sorts rows in, and its first direction."""

    key: str
    title: str
    width: int  # at least; host and launcher widen to what they hold
    sort: Callable[[EngineRow, float], Any]
    descending: bool  # numbers sort biggest first: the busiest, slowest, failing on top
    right: bool = True  # numbers are right-aligned


COLUMNS = (
    Column("id", "id", 3, lambda r, now: r.id, False),
    Column("host", "host", 4, lambda r, now: r.host, False, right=False),
    Column("pid", "pid", 6, lambda r, now: r.pid, False),
    Column("launcher", "launcher", 8, lambda r, now: r.launcher, False, right=False),
    # busy engines first, the one whose task has run longest (a straggler) on top
    Column(
        "state",
        "state",
        10,
        lambda r, now: (STATE_ORDER.get(r.state, 9), -_ran(r, now)),
        False,
        right=False,
    ),
    Column(
        "task",
        "task",
        TASK_WIDTH,
        lambda r, now: format.task(r.task, r.label) if r.task else "~",
        False,
        right=False,
    ),
    Column("queue", "queue", 5, lambda r, now: r.queue, True),
    Column("done", "done", 6, lambda r, now: r.completed, True),
    Column("failed", "fail", 4, lambda r, now: r.failed, True),
    Column("busy", "busy", 4, lambda r, now: _number(r.busy), True),
    Column("mean", "mean", 5, lambda r, now: _number(r.mean), True),
    Column("cpu", "cpu%", 4, lambda r, now: _number(r.cpu), True),
    Column("mem", "mem", 6, lambda r, now: _number(r.rss), True),
    Column("hb", "hb", 3, lambda r, now: _number(r.heartbeat), True),
)
BY_KEY = {c.key: c for c in COLUMNS}


def cells(r: EngineRow, now: float) -> tuple[tuple[str, Style | None], ...]:
    """The text of each cell of an engine's row, with its style (None: the row's)."""
    dim = None if r.alive else DIM
    state = r.state if r.task_started is None else f"busy {format.duration(_ran(r, now))}"
    late = r.heartbeat is not None and r.heartbeat > 5
    return (
        (str(r.id), dim),
        (r.host, dim),
        (str(r.pid), dim),
        (r.launcher, dim),
        (state, STATE_STYLE.get(r.state, DIM)),
        (format.task(r.task, r.label)[:TASK_WIDTH] if r.task else "-", RUNNING if r.task else DIM),
        (str(r.queue), dim),
        (str(r.completed), dim or Style(color="green")),
        (str(r.failed), Style(color="red") if r.failed else DIM),
        ("-" if r.busy is None else f"{r.busy:.0%}", dim),
        (format.duration(r.mean), dim),
        ("-" if r.cpu is None else str(r.cpu), dim),
        (format.size(r.rss), dim),
        (
            "-" if r.heartbeat is None else "ok" if r.heartbeat < LATE else f"{r.heartbeat}s",
            Style(bold=True, color="red") if late else dim,
        ),
    )


def matches(r: EngineRow, text: str) -> bool:
    """True if any of the row's words (id, host, pid, launcher, state, task) contains ``text``."""
    words = (
        str(r.id),
        r.host,
        str(r.pid),
        r.launcher,
        r.state,
        *format.task_words(r.task, r.label),
    )
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


class EngineRows(ScrollView, can_focus=True):
    """A header line, then one line per engine; a cursor row; only what is on screen drawn."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "engine-rows--header",
        "engine-rows--cursor",
        "engine-rows--odd",
    }
    DEFAULT_CSS = """
    EngineRows {
        height: auto;
        max-height: 100%;
        scrollbar-size-vertical: 1;
    }
    EngineRows > .engine-rows--header {
        text-style: bold;
        background: $panel;
    }
    EngineRows > .engine-rows--cursor {
        background: $block-cursor-blurred-background;
    }
    EngineRows:focus > .engine-rows--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    EngineRows > .engine-rows--odd {
        background: $surface-lighten-1 40%;
    }
    """

    BINDINGS = [
        Binding("up", "move(-1)", "Up", show=False),
        Binding("down", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "move(-1000000)", "First", show=False),
        Binding("end", "move(1000000)", "Last", show=False),
    ]

    cursor: var[int] = var(0)

    class Highlighted(Message):
        """The cursor moved (or the rows under it changed)."""

    class HeaderClicked(Message):
        """A column's title was clicked."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows: list[EngineRow] = []
        self.now = 0.0
        self.titles: list[tuple[str, Style | None]] = [(c.title, None) for c in COLUMNS]
        self._widths = [c.width for c in COLUMNS]
        self._drawn: dict[int, Strip] = {}  # lines drawn since the rows last changed

    def show(self, rows: list[EngineRow], now: float) -> None:
        """Show these rows; redraw if a line on screen changed."""
        grew = len(rows) != len(self.rows)
        self.rows, self.now = rows, now
        widths = self._measure()
        if grew or widths != self._widths:
            self._widths = widths
            self._drawn.clear()
            self.virtual_size = Size(sum(widths) + len(widths) + 1, len(rows) + 1)
            self.refresh()
            return
        drawn, self._drawn = self._drawn, {}
        if any(drawn.get(y) != self._line(y) for y in range(self.size.height)):
            self.refresh()

    def retitle(self, titles: list[tuple[str, Style | None]]) -> None:
        """New column titles (the sort column's arrow)."""
        self.titles = titles
        self._drawn.clear()
        self.refresh()

    def _measure(self) -> list[int]:
        """Column widths: at least each column's, wider for the longest host, launcher, task."""
        widths = [max(c.width, len(c.title) + 1) for c in COLUMNS]
        for i, key in ((1, "host"), (3, "launcher")):
            widths[i] = max([widths[i], *(len(getattr(r, key)) for r in self.rows)])
        return widths

    @property
    def engine(self) -> EngineRow | None:
        """The row under the cursor."""
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def _line(self, y: int) -> Strip:
        """Line ``y`` of the widget (0: the header), for the rows scrolled to now."""
        strip = self._drawn.get(y)
        if strip is not None:
            return strip
        _, top = self.scroll_offset
        if y == 0:
            strip = self._cells(self.titles, self.get_component_rich_style("engine-rows--header"))
        elif top + y - 1 < len(self.rows):
            i = top + y - 1
            base = self.rich_style
            if i == self.cursor:
                base = base + self.get_component_rich_style("engine-rows--cursor")
            elif i % 2:
                base = base + self.get_component_rich_style("engine-rows--odd")
            strip = self._cells(list(cells(self.rows[i], self.now)), base)
        else:
            strip = Strip.blank(self.size.width, self.rich_style)
        self._drawn[y] = strip
        return strip

    def _cells(self, texts: list[tuple[str, Style | None]], base: Style) -> Strip:
        segments = []
        for (text, style), width, column in zip(texts, self._widths, COLUMNS, strict=True):
            text = text[:width]
            padded = text.rjust(width) if column.right else text.ljust(width)
            segments.append(Segment(f" {padded}", base + style if style else base))
        return Strip(segments).extend_cell_length(self.size.width, base)

    def render_line(self, y: int) -> Strip:
        """One line of the table: the header stays put, the rows scroll."""
        scroll_x, _ = self.scroll_offset
        return self._line(y).crop_extend(scroll_x, scroll_x + self.size.width, self.rich_style)

    def watch_scroll_y(self, old: float, new: float) -> None:
        """Scrolled: every line shows another row."""
        self._drawn.clear()
        super().watch_scroll_y(old, new)

    def watch_cursor(self, old: int, new: int) -> None:
        """Redraw the two rows and keep the cursor on screen."""
        self._drawn.clear()
        _, top = self.scroll_offset
        height = max(self.size.height - 1, 1)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + height:
            self.scroll_to(y=new - height + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted())

    def move_to(self, row: int) -> None:
        """Put the cursor on a row (clamped to the rows there are)."""
        self.cursor = max(0, min(row, len(self.rows) - 1))

    def action_move(self, by: int) -> None:
        """Move the cursor by some rows."""
        self.move_to(self.cursor + by)

    def action_page(self, pages: int) -> None:
        """Move the cursor by a screenful."""
        self.move_to(self.cursor + pages * max(self.size.height - 1, 1))

    def on_click(self, event: events.Click) -> None:
        """A title sorts by its column; a row takes the cursor."""
        at = event.get_content_offset(self)
        if at is None:
            return
        if at.y == 0:
            x = at.x + int(self.scroll_offset.x)
            for width, column in zip(self._widths, COLUMNS, strict=True):
                if x < width + 1:
                    self.post_message(self.HeaderClicked(column.key))
                    return
                x -= width + 1
        else:
            self.move_to(int(self.scroll_offset.y) + at.y - 1)


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
    """

    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="filter engines by id, host, state, task…"),
        Binding("s", "sort", "Sort", tooltip="sort by the next column (or click a header)"),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="clear the filter"),
    ]

    snapshot: var[Snapshot | None] = var(None)
    sort_column: var[str] = var("id")
    sort_reverse: var[bool] = var(False)
    filter_text: var[str] = var("")

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
        self._order: tuple[int, ...] = ()
        self._selected: int | None = None

    def compose(self) -> ComposeResult:
        """A hidden filter box above the rows."""
        yield Input(
            placeholder="filter: id, host, pid, launcher, state, task or label", id="filter"
        )
        yield EngineRows(id="engine-rows")

    def on_mount(self) -> None:
        """Mark the sort column."""
        self._mark_sort()

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
        row = self.query_one(EngineRows).engine
        return None if row is None else row.id

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
        table = self.query(EngineRows)
        if not table:
            return  # not composed yet: on_mount marks it
        arrow = "▼" if self.sort_reverse else "▲"
        titles: list[tuple[str, Style | None]] = [
            (c.title + arrow, Style(underline=True, color="cyan"))
            if c.key == self.sort_column
            else (c.title, None)
            for c in COLUMNS
        ]
        table.first().retitle(titles)

    def _refresh_rows(self) -> None:
        snap = self.snapshot
        if not self.is_mounted or snap is None:
            return
        column, reverse = self.sort_column, self.sort_reverse
        rows = ordered(snap.engines, column, reverse, self.filter_text, snap.now)
        table = self.query_one(EngineRows)
        # Keep the cursor on the engine it was on, wherever that engine sorted to.
        before = table.engine
        table.show(rows, snap.now)
        if before is not None:
            at = next((i for i, r in enumerate(rows) if r.uuid == before.uuid), None)
            if at is not None and at != table.cursor:
                table.move_to(at)
        if table.cursor >= len(rows) and rows:
            table.move_to(len(rows) - 1)
        if table.engine is not None and table.engine.id != self._selected:
            self._selected = table.engine.id
            self.post_message(self.Selected(table.engine.id))
        order = tuple(r.id for r in rows)
        if order != self._order:
            self._order = order
            self.post_message(self.Ordered(order))

    @on(EngineRows.Highlighted)
    def _on_highlight(self) -> None:
        engine_id = self.highlighted
        if engine_id is not None and engine_id != self._selected:
            self._selected = engine_id
            self.post_message(self.Selected(engine_id))

    @on(EngineRows.HeaderClicked)
    def _on_header(self, event: EngineRows.HeaderClicked) -> None:
        if event.column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self._sort_by(event.column)

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
        self.query_one(EngineRows).focus()

    @on(Input.Changed, "#filter")
    def _on_filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _on_filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            self.remove_class("-filtering")
        self.query_one(EngineRows).focus()
