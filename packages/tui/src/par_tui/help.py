"""The help screen: every key, what it does, and what the panels show."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

NOTES = """\
Panels
  header     cluster id, controller address, launchers, engine and task counts, uptime,
             the controller's memory and CPU (its relays included; CPU in percent of one
             core), the last launcher event
  engines    one row per engine; state busy (and for how long) while a task runs; busy and
             mean: share of the last minute spent on tasks, and their mean run time; CPU and
             memory as each engine reports them in heartbeats
  lanes      per engine (or per host, g) over time, 1 s or 10 s per cell (w), in the table's
             order: shade = how busy; green tasks done, yellow running, red failed; blank =
             before the monitor knew; on the right the window's busy share, done and failed
  errors     failed tasks, newest first; / searches them; Enter shows the remote traceback
  output     what the selected engine's tasks printed (stderr in red)
  events     launcher lifecycle events (starting, running, failed, stopped…), newest first;
             failures in red

Notes
  restart    stops the engine, then starts one new engine through the cluster's launcher
             (par has no in-place restart: the new engine gets a new id)
  abort      says how many tasks of which clients have not started, then aborts those
  read-only  `par monitor --read-only` hides every action that changes the cluster
  the monitor reconnects by itself when the controller goes away and comes back"""


def _key(binding: Binding) -> str:
    return ", ".join(
        {"question_mark": "?", "slash": "/", "escape": "esc"}.get(k, k)
        for k in binding.key.split(",")
    )


class HelpScreen(ModalScreen[None]):
    """Keys and panels, from the bindings the app declares."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 100;
        max-width: 95%;
        height: 90%;
        border: thick $primary 60%;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, bindings: Iterable[BindingType], disabled: set[str]) -> None:
        super().__init__()
        self.bindings = [b for b in bindings if isinstance(b, Binding)]
        self.off_actions = disabled

    def compose(self) -> ComposeResult:
        """A table of keys, then the notes."""
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        table.add_column("key", style="bold cyan", width=12)
        table.add_column("action")
        for b in self.bindings:
            text = Text(b.tooltip or b.description)
            if b.action in self.off_actions:
                text.append("  (off: read-only)", style="dim")
                text.stylize("dim")
            table.add_row(_key(b), text)
        with VerticalScroll():
            yield Static(Text("par monitor: keys", style="bold"))
            yield Static(table)
            yield Static(Text(NOTES))
        yield Footer()
