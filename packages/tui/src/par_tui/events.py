"""The events view: the launchers' lifecycle events, newest first, failures in red."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.reactive import var
from textual.widgets import DataTable

from .state import LauncherEvent, Snapshot

EVENT_STYLE = {"running": "green", "starting": "yellow", "stopped": "dim"}


def event_style(event: LauncherEvent) -> str:
    """The colour of an event's name: red for failures, green once running, and so on."""
    return "bold red" if event.failure else EVENT_STYLE.get(event.event, "")


class EventList(DataTable[Any]):
    """Launcher events: time, launcher, kind (controller or engines), event, details."""

    DEFAULT_CSS = """
    EventList {
        height: 1fr;
    }
    """

    snapshot: var[Snapshot | None] = var(None)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._shown: tuple[LauncherEvent, ...] = ()

    def on_mount(self) -> None:
        """Add the columns."""
        self.add_column("time", key="time")
        self.add_column("launcher", key="launcher")
        self.add_column("kind", key="kind")
        self.add_column("event", key="event")
        self.add_column("details", key="details")
        self._show()

    def watch_snapshot(self) -> None:
        """Show new events (only when the list changed, so the cursor stays put)."""
        self._show()

    def _show(self) -> None:
        if not self.is_mounted or self.snapshot is None:
            return
        events = self.snapshot.launcher_events
        if events == self._shown:
            return
        selected = None
        if self.row_count:
            selected = self.coordinate_to_cell_key(self.cursor_coordinate)[0].value
        self.clear()
        for ev in events:
            red = "red" if ev.failure else ""
            self.add_row(
                Text(time.strftime("%H:%M:%S", time.localtime(ev.time)), style="dim"),
                Text(ev.launcher, style=red),
                Text(ev.kind, style=red),
                Text(ev.event, style=event_style(ev)),
                Text(ev.details_text[:300], style=red or "dim"),
                key=str(ev.seq),
            )
        keys = [str(ev.seq) for ev in events]
        if selected in keys:
            self.move_cursor(row=keys.index(selected), animate=False)
        self._shown = events

    @property
    def events(self) -> tuple[LauncherEvent, ...]:
        """The events shown, in display order (newest first)."""
        return self._shown
