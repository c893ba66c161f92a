"""The monitor app: composes the panels, feeds them snapshots, and runs the actions.

What the source reports only updates :class:`~par_tui.state.ClusterState`;
the panels are redrawn from a snapshot once per refresh interval (and at
once when the user changes what is shown), each redrawing only what changed.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var
from textual.widgets import TabbedContent, TabPane

from .confirm import Confirm
from .engine_table import EngineTable
from .error_detail import ErrorDetail
from .errors import ErrorList
from .events import EventList
from .footer import KeysFooter
from .header import ClusterHeader
from .help import HelpScreen
from .output import EngineOutput
from .source import MonitorSource
from .state import ClusterState, Snapshot
from .task_stream import TaskStream

CHANGES_CLUSTER = {
    "add_engine",
    "stop_engine",
    "restart_engine",
    "interrupt",
    "abort",
    "stop_cluster",
}
NEEDS_CONTROLLER = {"stop_engine", "restart_engine", "interrupt", "abort"}


class SourceEvent(Message):
    """Something the data source heard from the controller (posted from its threads)."""

    def __init__(self, kind: str, data: dict[str, Any], at: float) -> None:
        super().__init__()
        self.kind = kind
        self.data = data
        self.at = at


class MonitorApp(App[None]):
    """``par monitor``: a live view of one cluster, with actions."""

    TITLE = "par monitor"
    CSS = """
    TabbedContent {
        height: 1fr;
    }
    TabPane {
        padding: 0;
    }
    """

    BINDINGS = [
        Binding("question_mark", "help", "Help", tooltip="show this help"),
        Binding("1", "show('engines')", "Engines", show=False, tooltip="engines and task stream"),
        Binding("2", "show('errors')", "Errors", show=False, tooltip="failed tasks, newest first"),
        Binding("3", "show('output')", "Output", show=False, tooltip="selected engine's output"),
        Binding("4", "show('events')", "Events", tooltip="launcher lifecycle events"),
        Binding("w", "scale", "1s/10s", show=False, tooltip="lanes: 1 s or 10 s per cell"),
        Binding(
            "g", "group", "Per host", show=False, tooltip="lanes: one per engine or one per host"
        ),
        Binding(
            "a", "add_engine", "Add engine", tooltip="start one engine with the cluster's launcher"
        ),
        Binding("k", "stop_engine", "Stop", tooltip="stop the selected engine (asks first)"),
        Binding(
            "r",
            "restart_engine",
            "Restart",
            tooltip="stop the selected engine and start a new one (asks first)",
        ),
        Binding(
            "i",
            "interrupt",
            "SIGINT",
            tooltip="send SIGINT to the selected engine: its task raises KeyboardInterrupt",
        ),
        Binding(
            "x",
            "abort",
            "Abort queued",
            tooltip="abort every client's tasks not started yet (says how many first)",
        ),
        Binding(
            "S",
            "stop_cluster",
            "Stop cluster",
            tooltip="stop all engines and the controller (asks first)",
        ),
        Binding("q", "quit", "Quit", tooltip="leave the monitor (the cluster keeps running)"),
    ]

    snapshot: var[Snapshot | None] = var(None)
    read_only: var[bool] = var(False)
    selected_engine: var[int | None] = var(None)
    engine_order: var[tuple[int, ...]] = var(())
    lane_scale: var[int] = var(1)
    lanes_by_host: var[bool] = var(False)

    def __init__(
        self,
        source: MonitorSource | None = None,
        *,
        state: ClusterState | None = None,
        read_only: bool = False,
        refresh: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if source is None and state is None:
            raise ValueError("MonitorApp needs a source (live) or a state (recorded)")
        self.source = source
        self.state = state or ClusterState(source.cluster_id if source else "")
        self.refresh_interval = refresh
        self.clock = clock
        self._stop = threading.Event()
        self.set_reactive(MonitorApp.read_only, read_only)

    def compose(self) -> ComposeResult:
        """Header, the four tabs, footer."""
        yield ClusterHeader().data_bind(MonitorApp.snapshot, MonitorApp.read_only)
        with TabbedContent(initial="engines"):
            with TabPane("Engines", id="engines"):
                yield EngineTable().data_bind(MonitorApp.snapshot)
                yield TaskStream().data_bind(
                    snapshot=MonitorApp.snapshot,
                    order=MonitorApp.engine_order,
                    scale=MonitorApp.lane_scale,
                    by_host=MonitorApp.lanes_by_host,
                    selected=MonitorApp.selected_engine,
                )
            with TabPane("Errors", id="errors"):
                yield ErrorList().data_bind(MonitorApp.snapshot)
            with TabPane("Output", id="output"):
                yield EngineOutput().data_bind(MonitorApp.snapshot)
            with TabPane("Events", id="events"):
                yield EventList().data_bind(MonitorApp.snapshot)
        yield KeysFooter(compact=True)

    def on_mount(self) -> None:
        """Start listening to the controller (live), or show the recorded state once."""
        # What is there now (modules, widgets) lives as long as the app: keep it out of the
        # collector's full passes, which would otherwise stall a redraw now and then.
        gc.freeze()
        self.query_one("#engine-rows").focus()
        self._show()
        if self.source is not None:
            self._run_source()
            self.set_interval(self.refresh_interval, self._tick)

    def on_unmount(self) -> None:
        """Let the source's thread end (it closes the client)."""
        self._stop.set()

    @work(thread=True, exclusive=True, name="source")
    def _run_source(self) -> None:
        assert self.source is not None
        self.source.run(self._emit, self._stop)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        """Called on the source's threads: hand the event to the UI thread."""
        self.post_message(SourceEvent(kind, data, time.time()))

    def _tick(self) -> None:
        # The timer can still fire while the app shuts down, after its tabs were removed.
        if self.is_running:
            self._show()

    def _show(self) -> None:
        """Freeze the state for the widgets (once per refresh interval)."""
        self.snapshot = self.state.snapshot(self.clock(), self.selected_engine)

    # ---- what the source reports ---------------------------------------------------------

    @on(SourceEvent)
    def _on_source_event(self, event: SourceEvent) -> None:
        kind, data = event.kind, event.data
        self.state.apply(kind, data, event.at)
        if kind == "connected":
            self.notify("connected to the controller", timeout=2)
            self.refresh_bindings()
        elif kind == "disconnected":
            self.notify(f"{data.get('reason')}: waiting for it to come back", severity="warning")
            self.refresh_bindings()
            self._show()
        elif kind == "engine_lost":
            self.notify(f"engine {data.get('id')} lost: {data.get('reason')}", severity="error")

    @on(EngineTable.Selected)
    def _on_engine_selected(self, event: EngineTable.Selected) -> None:
        self.selected_engine = event.engine_id

    @on(EngineTable.Ordered)
    def _on_engines_ordered(self, event: EngineTable.Ordered) -> None:
        self.engine_order = event.order

    def watch_selected_engine(self) -> None:
        """Show the newly selected engine's output now, not at the next refresh."""
        if self.is_running:
            self._show()
            self.refresh_bindings()

    @on(TabbedContent.TabActivated)
    def _on_tab(self, event: TabbedContent.TabActivated) -> None:
        # Keys go to what the tab shows: the engine rows, the error rows, the output.
        for widget in event.pane.query("DataTable, EngineOutput, EngineRows").results():
            widget.focus()
            break

    @on(ErrorList.Open)
    def _on_error_open(self, event: ErrorList.Open) -> None:
        self.push_screen(ErrorDetail(event.record))

    # ---- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide what changes the cluster in read-only mode; grey out what cannot run now."""
        if action not in CHANGES_CLUSTER:
            return True
        if self.read_only:
            return False
        if self.source is None:
            return None
        if action in NEEDS_CONTROLLER and not self.source.connected:
            return None
        if action in ("stop_engine", "restart_engine", "interrupt"):
            return True if self._highlighted_alive() is not None else None
        return True

    def _highlighted_alive(self) -> int | None:
        """The engine under the table's cursor now, if it is still in the cluster."""
        table = self.screen_stack[0].query_one(EngineTable)
        eid = table.highlighted
        snap = self.snapshot
        if snap is None or eid is None:
            return None
        return eid if any(r.id == eid and r.alive for r in snap.engines) else None

    def action_help(self) -> None:
        """Show every key."""
        disabled = CHANGES_CLUSTER if self.read_only else set()
        self.push_screen(
            HelpScreen([*self.BINDINGS, *EngineTable.BINDINGS, *ErrorList.BINDINGS[:1]], disabled)
        )

    def action_show(self, tab: str) -> None:
        """Switch to a tab."""
        self.query_one(TabbedContent).active = tab

    def action_scale(self) -> None:
        """Lanes: 1 s or 10 s per cell."""
        self.lane_scale = 10 if self.lane_scale == 1 else 1

    def action_group(self) -> None:
        """Lanes: one per engine or one per host."""
        self.lanes_by_host = not self.lanes_by_host

    @property
    def live(self) -> MonitorSource:
        """The source (actions that change the cluster are disabled without one)."""
        assert self.source is not None
        return self.source

    def action_add_engine(self) -> None:
        """Start one more engine through the cluster's launcher."""
        self._act("add engine", lambda: self.live.add_engines(1))

    def action_stop_engine(self) -> None:
        """Stop the highlighted engine, after asking."""
        self._ask_then("stop engine {id}?", self.live.stop_engine)

    def action_restart_engine(self) -> None:
        """Stop the highlighted engine and start a new one, after asking."""
        self._ask_then(
            "restart engine {id}? It stops, and a new engine (with a new id) starts.",
            self.live.restart_engine,
        )

    def action_interrupt(self) -> None:
        """Send SIGINT to the highlighted engine."""
        eid = self._highlighted_alive()
        if eid is not None:
            self._act(f"SIGINT to engine {eid}", lambda: self.live.interrupt_engine(eid))

    @work(thread=True, exclusive=True, group="abort")
    def action_abort(self) -> None:
        """Ask the controller which tasks have not started, say whose, then abort them."""
        try:
            by_client = self.live.unstarted()
        except Exception as exc:
            self.call_from_thread(self.notify, f"abort failed: {exc}", severity="error")
            return
        self.call_from_thread(self._confirm_abort, by_client)

    def _confirm_abort(self, by_client: dict[str, list[str]]) -> None:
        total = sum(len(ids) for ids in by_client.values())
        if not total:
            self.notify("no task is waiting to start: nothing to abort", timeout=3)
            return
        whose = ", ".join(
            f"{len(ids)} of client {tag}"
            for tag, ids in sorted(by_client.items(), key=lambda kv: -len(kv[1]))
        )
        ids = [mid for mids in by_client.values() for mid in mids]

        def answered(yes: bool | None) -> None:
            if yes:
                self._act(f"abort {total} tasks", lambda: self.live.abort(ids))

        question = (
            f"Abort {total} task{'s' * (total != 1)} not started yet: {whose}? "
            "Tasks already running go on."
        )
        self.push_screen(Confirm(question), answered)

    def action_stop_cluster(self) -> None:
        """Stop the whole cluster, after asking."""

        def answered(yes: bool | None) -> None:
            if yes:
                self._act("stop cluster", self.live.stop_cluster)

        question = f"Stop cluster {self.live.cluster_id!r}: every engine and the controller?"
        self.push_screen(Confirm(question), answered)

    def _ask_then(self, question: str, act: Callable[[int], None]) -> None:
        # The engine under the cursor when the key was pressed, named in the question and
        # acted on, whatever the cursor does while the dialog is open.
        eid = self._highlighted_alive()
        if eid is None:
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._act(question.split("?")[0].format(id=eid), lambda: act(eid))

        self.push_screen(Confirm(question.format(id=eid)), answered)

    def _act(self, what: str, fn: Callable[[], object]) -> None:
        """Run an action in a worker thread and say how it went."""

        def job() -> None:
            try:
                fn()
            except Exception as exc:
                self.call_from_thread(self.notify, f"{what} failed: {exc}", severity="error")
            else:
                self.call_from_thread(self.notify, f"{what}: done", timeout=3)

        self.notify(f"{what}…", timeout=2)
        self.run_worker(job, thread=True, group="actions", name=what)
