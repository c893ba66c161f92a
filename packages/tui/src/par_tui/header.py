"""The cluster header: which cluster, where, started how, what the controller costs, engine and
task counts, last event."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import var
from textual.widget import Widget

from . import format
from .events import event_style
from .state import Snapshot


class ClusterHeader(Widget):
    """Four lines at the top: identity, engines, tasks, the last launcher event."""

    DEFAULT_CSS = """
    ClusterHeader {
        height: 4;
        padding: 0 1;
        background: $panel;
    }
    ClusterHeader.-disconnected {
        background: $error 30%;
    }
    """

    snapshot: var[Snapshot | None] = var(None)
    read_only: var[bool] = var(False)

    def __init__(self) -> None:
        super().__init__()
        self._text = Text("par monitor: connecting…")

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        """Redraw if a line changed; colour the header while the controller is away."""
        self.set_class(snapshot is not None and not snapshot.connected, "-disconnected")
        self._update()

    def watch_read_only(self) -> None:
        """Say so in the first line."""
        self._update()

    def _update(self) -> None:
        if self.snapshot is None:
            return
        text = self._lines(self.snapshot)
        if text != self._text:
            self._text = text
            self.refresh()

    def render(self) -> Text:
        """The four header lines."""
        return self._text

    def _lines(self, s: Snapshot) -> Text:
        """The four header lines of a snapshot."""
        first = Text.assemble(
            ("cluster ", "dim"),
            (s.cluster_id, "bold"),
            ("  controller ", "dim"),
            s.controller_url or "-",
            ("  uptime ", "dim"),
            format.age(s.uptime),
            ("  memory ", "dim"),
            format.size(s.controller_rss),
            ("  cpu ", "dim"),
            format.percent(s.controller_cpu),
            ("  ", ""),
            ("● connected", "green") if s.connected else (f"✖ {s.status_line}", "bold red"),
            ("  [read-only]" if self.read_only else "", "bold yellow"),
        )
        engines = Text.assemble(
            ("engines ", "dim"),
            (f"{s.up} up", "bold green"),
            (f" ({s.busy} busy)", "yellow" if s.busy else "dim"),
            ("  ", ""),
            (f"{s.registering} registering", "yellow" if s.registering else "dim"),
            ("  ", ""),
            (f"{s.lost} lost", "bold red" if s.lost else "dim"),
            ("    launchers ", "dim"),
            s.launchers or "-",
        )
        tasks = Text.assemble(
            ("tasks ", "dim"),
            (f"{s.queued} queued", "bold"),
            ("  ", ""),
            (f"{s.running} running", "bold yellow" if s.running else ""),
            ("  ", ""),
            (f"{s.done} done", "bold green"),
            ("  ", ""),
            (f"{s.failed} failed", "bold red" if s.failed else "dim"),
            ("  ", ""),
            (f"{s.aborted} aborted", "dim"),
            ("    ", ""),
            (format.rate(s.rate, " tasks/s"), "bold cyan"),
        )
        # Cut a long line short: wrapped, it would push the lines below out of the header.
        lines = Text("\n", no_wrap=True, overflow="ellipsis")
        return lines.join([first, engines, tasks, _last_event(s)])


def _last_event(s: Snapshot) -> Text:
    """The newest launcher event, on one line."""
    line = Text.assemble(("last launcher event ", "dim"))
    if not s.launcher_events:
        line.append("-")
        return line
    ev = s.launcher_events[0]
    line.append(time.strftime("%H:%M:%S", time.localtime(ev.time)))
    line.append(f" ({format.age(max(s.now - ev.time, 0.0))} ago)  ", style="dim")
    line.append(f"{ev.launcher} {ev.kind} ")
    line.append(ev.event, style=event_style(ev))
    line.append(f"  {ev.details_text}", style="red" if ev.failure else "dim")
    return line
