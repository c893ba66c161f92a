"""Throughput over time and the task stream: one lane per engine (or per host) through time.

A lane is a row of cells, one per time bucket (1 s, or 10 s with ``w``),
oldest on the left and the bucket of now on the right. A cell's shade says
how busy the engine was in that bucket (``░▒▓█``: the seconds of work of the
tasks that finished there, plus the running task's), its colour what
happened: green tasks finished, yellow a task still running, red a task
failed; ``·`` is idle, and a blank cell a time before the monitor knew. On
the right, the window's busy share and its tasks done and failed: summed
over the whole window, so they agree with the engine table whenever the
window covers the engine's work.

Lanes follow the engine table's order and filter. They are drawn through
Textual's line API: only the lanes on screen are computed, and only when
what they show changed, so a thousand engines cost what thirty do. ``g``
shows one lane per host (in the order of each host's first engine in the
table) instead; the first lane, ``all``, is the whole cluster.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Sparkline

from . import format
from .activity import ALL, Cell
from .fixed_text import FixedText
from .state import EngineRow, Snapshot

SHADES = "░▒▓█"  # busy fraction of a cell: <25%, <50%, <75%, more
STYLES = {
    "ok": Style(color="green"),
    "running": Style(color="yellow"),
    "error": Style(color="red"),
    "idle": Style(color="grey23"),
    "label": Style(bold=True),
    "selected": Style(bold=True, reverse=True),
    "dim": Style(dim=True),
}
STATS_WIDTH = 18  # " busy   done fail"


class Throughput(Horizontal):
    """Tasks finished per second over the last minute, with the current and peak rate."""

    DEFAULT_CSS = """
    Throughput {
        height: 1fr;
        min-height: 3;
        max-height: 16;
    }
    Throughput > FixedText {
        width: 16;
        height: 4;
        padding: 0 1;
    }
    Throughput > Sparkline {
        width: 1fr;
        height: 100%;
    }
    """

    snapshot: var[Snapshot | None] = var(None)

    def compose(self) -> ComposeResult:
        """A label and a sparkline."""
        yield FixedText(id="rate")
        yield Sparkline([], id="throughput")

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        """Redraw the chart if its numbers changed."""
        if snapshot is None or not self.is_mounted:
            return
        data = [float(x) for x in snapshot.throughput]
        peak = max(snapshot.throughput, default=0)
        label = Text.assemble(
            ("throughput\n", "bold"),
            (f"{format.rate(snapshot.rate)} now\n", "cyan"),
            (f"peak {format.rate(peak)}\n", "dim"),
            (f"last {len(data)} s", "dim"),
            no_wrap=True,
            overflow="ellipsis",
        )
        self.query_one(FixedText).show(label)
        chart = self.query_one(Sparkline)
        if chart.data != data:
            chart.data = data


@dataclass(frozen=True)
class Lane:
    """What one lane adds up: a key of the activity store, and the engines it covers (the
    busy share is of their time)."""

    key: object
    label: str
    engines: tuple[EngineRow, ...]


@dataclass(frozen=True)
class LaneView:
    """A lane as drawn: its cells, and its sums over the part of the window known."""

    cells: tuple[tuple[str, str], ...]  # (character, style) per bucket, oldest first
    busy: float  # share of the known window the lane's engines spent on tasks
    done: int
    failed: int


def view(snap: Snapshot, lane: Lane, scale: int, n: int) -> LaneView:
    """The ``n`` buckets of a lane ending at the bucket of ``snap.now``, running tasks
    included."""
    last = int(snap.now) // scale
    first = last - n + 1
    cells = snap.activity.cells(lane.key, scale, first, n)
    since = snap.activity.since
    width = max(len(lane.engines), 1) * scale
    # When the running tasks began, sorted, with their prefix sums: the running work in a
    # cell is then two bisections, however many engines the lane covers.
    began = sorted(e.task_started for e in lane.engines if e.task_started is not None)
    sums = list(accumulate(began, initial=0.0))
    looks = []
    busy = known = 0.0
    for i, cell in enumerate(cells):
        start = (first + i) * scale
        end = start + scale
        if since is not None and end <= since:
            looks.append((" ", "idle"))
            continue
        stop = min(end, snap.now)
        before = bisect_left(began, start)  # running since before the cell: all of it
        within = bisect_left(began, stop)  # and those that began inside it
        running = stop - start if stop > start else 0.0
        work = cell.busy + before * running
        work += (within - before) * stop - (sums[within] - sums[before]) if running else 0.0
        looks.append(_look(cell, work / width, running > 0 and within > 0))
        busy += work
        known += width
    return LaneView(
        tuple(looks),
        min(busy / known, 1.0) if known else 0.0,
        sum(c.done for c in cells),
        sum(c.failed for c in cells),
    )


def _look(cell: Cell, fraction: float, running: bool) -> tuple[str, str]:
    """A cell's character (shade of busy) and style: failed, else finished, else running."""
    if not running and not cell.done and not cell.failed and fraction <= 0:
        return "·", "idle"
    shade = SHADES[min(int(fraction * 4), 3)]
    if cell.failed:
        return shade, "error"
    return shade, "ok" if cell.done or not running else "running"


def lanes_of(snap: Snapshot, order: Sequence[int], by_host: bool) -> list[Lane]:
    """The lanes to show: the cluster, then each engine in ``order`` (or each of their hosts)."""
    rows = {r.id: r for r in snap.engines}
    shown = [rows[i] for i in order if i in rows]
    live = tuple(r for r in rows.values() if r.alive)
    lanes = [Lane(ALL, "all", live or tuple(rows.values()))]
    if not by_host:
        return lanes + [Lane(r.id, f"e{r.id}", (r,)) for r in shown]
    hosts: dict[str, list[EngineRow]] = {}
    for r in shown:
        hosts.setdefault(r.host, []).append(r)
    return lanes + [Lane(("host", h), f"{h} ({len(es)})", tuple(es)) for h, es in hosts.items()]


class Lanes(ScrollView):
    """The lanes, one line each, drawn only where they are on screen."""

    DEFAULT_CSS = """
    Lanes {
        height: auto;
        max-height: 70%;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    """

    snapshot: var[Snapshot | None] = var(None)
    order: var[tuple[int, ...]] = var(())
    scale: var[int] = var(1)
    by_host: var[bool] = var(False)
    selected: var[int | None] = var(None)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lanes: list[Lane] = []
        self._lines: dict[int, Strip] = {}  # lines drawn for the current state, by lane index
        self._label_width = 6

    @property
    def lanes(self) -> list[Lane]:
        """The lanes in display order (the first is the whole cluster)."""
        return self._lanes

    def views(self) -> list[tuple[Lane, LaneView]]:
        """Every lane as it is drawn now, with its sums over the window shown."""
        snap = self.snapshot
        if snap is None:
            return []
        return [(lane, view(snap, lane, self.scale, self._cells())) for lane in self._lanes]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """One line per lane, plus the time axis."""
        return len(self._lanes) + 1

    def watch_snapshot(self) -> None:
        """Redraw the lanes on screen, if what they show changed."""
        self._update()

    def watch_order(self) -> None:
        """Follow the engine table."""
        self._update()

    def watch_scale(self) -> None:
        """Another time scale."""
        self._update()

    def watch_by_host(self) -> None:
        """Per engine or per host."""
        self._update()

    def watch_selected(self, engine: int | None) -> None:
        """Mark the selected engine's lane and scroll to it."""
        self._update()
        y = next((y for y, lane in enumerate(self._lanes, 1) if lane.key == engine), None)
        _, top = self.scroll_offset
        if y is not None and not top <= y < top + self.size.height:
            self.scroll_to(y=max(y - self.size.height // 2, 0), animate=False)

    def _update(self) -> None:
        snap = self.snapshot
        if snap is None or not self.is_mounted:
            return
        lanes = lanes_of(snap, self.order, self.by_host)
        if [(x.key, x.label) for x in lanes] != [(x.key, x.label) for x in self._lanes]:
            self._label_width = min(max(len(x.label) for x in lanes) + 1, 24)
            self._lanes = lanes
            self._lines.clear()
            self.virtual_size = Size(self.size.width, len(lanes) + 1)
            self.refresh(layout=True)
            return
        self._lanes = lanes
        # Draw the lines on screen again, and refresh only if one of them changed.
        drawn, self._lines = self._lines, {}
        _, top = self.scroll_offset
        if any(drawn.get(y) != self._draw(y) for y in range(top, top + self.size.height)):
            self.refresh()

    def _cells(self) -> int:
        return max(self.size.width - self._label_width - STATS_WIDTH - 1, 10)

    def _draw(self, y: int) -> Strip:
        """Line ``y``: the axis (0) or a lane."""
        strip = self._lines.get(y)
        if strip is not None:
            return strip
        snap = self.snapshot
        n = self._cells()
        lw = self._label_width
        if snap is None:
            strip = Strip.blank(self.size.width)
        elif y == 0:
            window = format.duration(n * self.scale).replace(".0s", "s")
            unit = f"{self.scale} s/cell"
            left = f"-{window}".ljust(lw) + f" ({unit}, w: {10 // self.scale or 1} s)"
            head = f"{left[: n + lw - 3]:<{n + lw - 3}}now"
            strip = Strip(
                [
                    Segment(head, STYLES["dim"]),
                    Segment(f"{'busy':>6}{'done':>7}{'fail':>5}", STYLES["dim"]),
                ]
            )
        elif y - 1 < len(self._lanes):
            lane = self._lanes[y - 1]
            style = STYLES["selected"] if lane.key == self.selected else STYLES["label"]
            segments = [Segment(lane.label[: lw - 1].rjust(lw - 1), style), Segment(" ")]
            run_text, run_style = "", ""
            drawn = view(snap, lane, self.scale, n)
            for char, look in drawn.cells:
                if look != run_style and run_text:
                    segments.append(Segment(run_text, STYLES[run_style]))
                    run_text = ""
                run_text += char
                run_style = look
            if run_text:
                segments.append(Segment(run_text, STYLES[run_style]))
            segments += [
                Segment(f"{drawn.busy:>6.0%}"),
                Segment(f"{format.count(drawn.done):>7}", STYLES["ok"]),
                Segment(
                    f"{format.count(drawn.failed):>5}", STYLES["error" if drawn.failed else "dim"]
                ),
            ]
            strip = Strip(segments)
        else:
            strip = Strip.blank(self.size.width)
        self._lines[y] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        """One line of the lanes, scrolled."""
        scroll_x, scroll_y = self.scroll_offset
        strip = self._draw(y + scroll_y)
        return strip.crop_extend(scroll_x, scroll_x + self.size.width, self.rich_style)


class TaskStream(Vertical):
    """Throughput chart above the lanes."""

    DEFAULT_CSS = """
    TaskStream {
        height: 1fr;
        border-top: solid $primary 50%;
    }
    """

    snapshot: var[Snapshot | None] = var(None)
    order: var[tuple[int, ...]] = var(())
    scale: var[int] = var(1)
    by_host: var[bool] = var(False)
    selected: var[int | None] = var(None)

    def compose(self) -> ComposeResult:
        """The chart and the lanes, both following this widget's snapshot."""
        yield Throughput().data_bind(TaskStream.snapshot)
        yield Lanes().data_bind(
            TaskStream.snapshot,
            TaskStream.order,
            TaskStream.scale,
            TaskStream.by_host,
            TaskStream.selected,
        )
