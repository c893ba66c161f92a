"""Throughput over time and the task stream: one lane per engine, recent tasks along it.

A lane covers the last minute, one cell per slice of time: shaded by how
busy the engine was in that slice, green for tasks that finished, yellow
for the task running now, red where a task failed. Idle engines show as
empty lanes, stragglers as one long yellow bar.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Sparkline

from .state import Snapshot, TaskSpan

SHADES = " ░▒▓█"  # busy fraction of a cell: none, <25%, <50%, <75%, more
COLOURS = {"ok": "green", "running": "yellow", "error": "red", "aborted": "magenta"}
RANK = {"ok": 0, "aborted": 1, "running": 2, "error": 3}  # what a shared cell shows
LABEL_WIDTH = 6


class Throughput(Horizontal):
    """Tasks finished per second over the last minute, with the current and peak rate."""

    DEFAULT_CSS = """
    Throughput {
        height: 3;
    }
    Throughput > Label {
        width: 22;
        padding: 0 1;
    }
    Throughput > Sparkline {
        width: 1fr;
        height: 3;
    }
    """

    snapshot: reactive[Snapshot | None] = reactive(None)

    def compose(self) -> ComposeResult:
        """A label and a sparkline."""
        yield Label("", id="rate")
        yield Sparkline([], id="throughput")

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        """Redraw the chart."""
        if snapshot is None or not self.is_mounted:
            return
        data = snapshot.throughput
        now = sum(data[-5:]) / 5 if data else 0.0
        peak = max(data, default=0)
        self.query_one("#rate", Label).update(
            Text.assemble(
                ("throughput\n", "bold"),
                (f"{now:.1f}/s now ", "cyan"),
                (f"{peak}/s peak", "dim"),
                ("\n", ""),
                (f"last {len(data)} s", "dim"),
            )
        )
        self.query_one(Sparkline).data = [float(x) for x in data]


def lane(spans: tuple[TaskSpan, ...], start: float, end: float, cells: int) -> Text:
    """One engine's lane between ``start`` and ``end`` as ``cells`` coloured characters."""
    width = (end - start) / cells
    busy = [0.0] * cells
    worst: list[str | None] = [None] * cells
    for span in spans:
        s, e = max(span.start, start), min(span.end if span.end is not None else end, end)
        if e < s:
            continue
        first = min(int((s - start) / width), cells - 1)
        last = min(int((e - start) / width), cells - 1)
        for i in range(first, last + 1):
            lo, hi = start + i * width, start + (i + 1) * width
            overlap = min(e, hi) - max(s, lo)
            if overlap <= 0 and e > s:
                continue  # only touches this cell's edge
            busy[i] += max(overlap, 0.0)
            if worst[i] is None or RANK[span.status] > RANK[worst[i] or "ok"]:
                worst[i] = span.status
    text = Text()
    for i in range(cells):
        if worst[i] is None:
            text.append("·", "grey23")
            continue
        level = 1 + min(int(busy[i] / width * 4), 3)  # any task at all shows
        text.append(SHADES[level], COLOURS[worst[i] or "ok"])
    return text


class Lanes(Widget):
    """Per-engine lanes of recent tasks."""

    DEFAULT_CSS = """
    Lanes {
        height: auto;
        min-height: 2;
        padding: 0 1;
    }
    """

    snapshot: reactive[Snapshot | None] = reactive(None, layout=True)
    seconds: reactive[int] = reactive(60)

    def render(self) -> Text:
        """The lanes, one per engine, oldest on the left."""
        s = self.snapshot
        if s is None or not s.lanes:
            return Text("no engines", style="dim")
        cells = max(self.size.width - LABEL_WIDTH - 12, 10)
        start, end = s.now - self.seconds, s.now
        lines = [
            Text.assemble(
                (f"-{self.seconds}s".ljust(LABEL_WIDTH), "dim"),
                (" " * (cells - 3), ""),
                ("now", "dim"),
                ("  done/fail", "dim"),
            )
        ]
        for eid, spans in s.lanes:
            done = sum(1 for x in spans if x.status == "ok")
            bad = sum(1 for x in spans if x.status == "error")
            lines.append(
                Text.assemble(
                    (f"e{eid}".rjust(LABEL_WIDTH - 1) + " ", "bold"),
                    lane(spans, start, end, cells),
                    (f" {done:>5}", "green"),
                    (f"/{bad:<4}", "red" if bad else "dim"),
                )
            )
        return Text("\n").join(lines)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        """One line per engine plus the time axis."""
        return 1 + (len(self.snapshot.lanes) if self.snapshot else 1)


class TaskStream(Vertical):
    """Throughput chart above the engine lanes."""

    DEFAULT_CSS = """
    TaskStream {
        height: 1fr;
        border-top: solid $primary 50%;
        overflow-y: auto;
    }
    """

    snapshot: reactive[Snapshot | None] = reactive(None)

    def compose(self) -> ComposeResult:
        """The chart and the lanes, both following this widget's snapshot."""
        yield Throughput().data_bind(TaskStream.snapshot)
        yield Lanes().data_bind(TaskStream.snapshot)
