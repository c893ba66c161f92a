"""The cluster header: which cluster, where, started how, and its engine and task counts."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from . import format
from .state import Snapshot


class ClusterHeader(Widget):
    """Three lines at the top: identity, engines, tasks."""

    DEFAULT_CSS = """
    ClusterHeader {
        height: 3;
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
        """The three header lines."""
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
            ("  ", ""),
            (f"{s.registering} registering", "yellow" if s.registering else "dim"),
            ("  ", ""),
            (f"{s.lost} lost", "bold red" if s.lost else "dim"),
            ("    launchers ", "dim"),
            s.launchers or "-",
        )
        rate = sum(s.throughput[-5:]) / 5 if s.throughput else 0.0
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
            (f"{rate:.1f} tasks/s", "bold cyan"),
        )
        return Text("\n").join([first, engines, tasks])
