"""The cluster header: which cluster, where, started how, engine and task counts, last event."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
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

    snapshot: reactive[Snapshot | None] = reactive(None)
    read_only: reactive[bool] = reactive(False)

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        """Colour the header while the controller is away."""
        self.set_class(snapshot is not None and not snapshot.connected, "-disconnected")

    def render(self) -> Text:
        """The four header lines."""
        s = self.snapshot
        if s is None:
            return Text("par monitor: connecting…")
        first = Text.assemble(
            ("cluster ", "dim"),
            (s.cluster_id, "bold"),
            ("  controller ", "dim"),
            s.controller_url or "-",
            ("  uptime ", "dim"),
            format.duration(s.uptime),
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
    line.append(f" ({format.duration(max(s.now - ev.time, 0.0))} ago)  ", style="dim")
    line.append(f"{ev.launcher} {ev.kind} ")
    line.append(ev.event, style=event_style(ev))
    line.append(f"  {ev.details_text}", style="red" if ev.failure else "dim")
    return line
