"""The monitor's notebook face: ``rc.monitor()`` shows a live panel in Jupyter, text elsewhere.

The panel is fed like the terminal app: a :class:`~par_tui.source.MonitorSource`
(its own client of the controller) reports to a
:class:`~par_tui.state.ClusterState`, and a thread freezes a snapshot once
per interval and sets the widgets whose text changed: a header with the
counts, the throughput of the last minute, the engine table, the newest
errors, and the terminal app's actions as buttons (add an engine; stop,
restart or interrupt the chosen one; abort the tasks not started, after
saying whose; stop the cluster, after asking). Nothing here needs Textual;
ipywidgets is imported only to build a panel.

Outside a notebook there is nothing live to show: :func:`monitor` returns
the cluster's state now, as text.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

import par

from . import format
from .source import MonitorSource
from .state import ClusterState, EngineRow, Snapshot

ROWS_SHOWN = 100  # engines listed in the panel's table (the busiest first)
ERRORS_SHOWN = 5
SPARKS = "▁▂▃▄▅▆▇█"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def monitor(client: par.Client, interval: float = 1.0) -> MonitorPanel | ClusterText:
    """A live panel of the client's cluster in a notebook; its state now, as text, elsewhere."""
    cluster_id = client.connection_info.cluster_id
    if in_notebook():
        return MonitorPanel(cluster_id, interval)
    state = ClusterState(cluster_id)
    now = time.time()
    state.apply("connected", {"controller_url": client.connection_info.client_url}, now)
    state.apply("status", client.status(), now)
    return ClusterText(as_text(state.snapshot(now)))


class ClusterText:
    """A cluster's state as text (what :func:`monitor` returns outside a notebook)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


def _shown(snap: Snapshot) -> list[EngineRow]:
    """The engines to list: live ones first, busy before idle, then by id."""
    order = {"busy": 0, "up": 1, "registering": 2}
    return sorted(snap.engines, key=lambda r: (order.get(r.state, 3), r.id))[:ROWS_SHOWN]


def _counts(snap: Snapshot) -> str:
    return (
        f"engines {snap.up} up ({snap.busy} busy), {snap.registering} registering, "
        f"{snap.lost} lost; tasks {snap.queued} queued, {snap.running} running, "
        f"{snap.done} done, {snap.failed} failed, {snap.aborted} aborted; "
        f"{format.rate(snap.rate, ' tasks/s')}"
    )


def as_text(snap: Snapshot) -> str:
    """A snapshot as lines of text: the counts, then one line per engine."""
    lines = [
        f"cluster {snap.cluster_id}  controller {snap.controller_url or '-'}  "
        f"uptime {format.age(snap.uptime)}  memory {format.size(snap.controller_rss)}  "
        f"cpu {format.percent(snap.controller_cpu)}",
        _counts(snap),
        f"{'id':>4}  {'host':<12} {'state':<11} {'task':<20} {'queue':>5} {'done':>7} "
        f"{'fail':>5} {'cpu%':>4} {'mem':>7}",
    ]
    for r in _shown(snap):
        lines.append(
            f"{r.id:>4}  {r.host[:12]:<12} {r.state:<11} "
            f"{format.task(r.task, r.label)[:20] if r.task else '-':<20} {r.queue:>5} "
            f"{r.completed:>7} {r.failed:>5} {'-' if r.cpu is None else r.cpu:>4} "
            f"{format.size(r.rss):>7}"
        )
    return "\n".join(lines)


def engines_html(snap: Snapshot) -> str:
    """The engine table as HTML."""
    head = "".join(
        f"<th>{t}</th>"
        for t in ("id", "host", "state", "task", "queue", "done", "fail", "busy", "cpu%", "mem")
    )
    rows = []
    for r in _shown(snap):
        state = r.state
        if r.task_started is not None:
            state += f" {format.duration(max(snap.now - r.task_started, 0.0))}"
        cells = (
            r.id,
            r.host,
            state,
            format.task(r.task, r.label) if r.task else "-",
            r.queue,
            r.completed,
            r.failed,
            "-" if r.busy is None else f"{r.busy:.0%}",
            "-" if r.cpu is None else r.cpu,
            format.size(r.rss),
        )
        tds = "".join(f"<td>{html.escape(str(c))}</td>" for c in cells)
        rows.append(f"<tr class='par-{r.state}'>{tds}</tr>")
    more = len(snap.engines) - ROWS_SHOWN
    tail = f"<p>and {more} more engines</p>" if more > 0 else ""
    return f"<table class='par-engines'><tr>{head}</tr>{''.join(rows)}</table>{tail}"


def throughput_text(snap: Snapshot) -> str:
    """Tasks finished per second over the last minute, as one line of bars."""
    peak = max(snap.throughput, default=0)
    bars = "".join(
        SPARKS[min(int(x / peak * 7.99), 7)] if peak else SPARKS[0] for x in snap.throughput
    )
    return f"throughput {format.rate(snap.rate)} now, peak {format.rate(peak)}  {bars}"


def errors_html(snap: Snapshot) -> str:
    """The newest errors, one line each."""
    lines = [
        f"<li><code>{html.escape(format.task(e.id, e.label))}</code> on engine {e.engine}: "
        f"<b>{html.escape(e.ename)}</b> {html.escape((e.evalue.splitlines() or [''])[0][:200])}"
        "</li>"
        for e in snap.errors[:ERRORS_SHOWN]
    ]
    return f"<ul class='par-errors'>{''.join(lines)}</ul>" if lines else ""


class MonitorPanel:
    """A live ipywidgets panel of one cluster, with the terminal monitor's actions as buttons."""

    def __init__(self, cluster_id: str, interval: float = 1.0) -> None:
        import ipywidgets as w

        self.source = MonitorSource(cluster_id, interval)
        self.source.connect()
        self.state = ClusterState(cluster_id)
        self.interval = interval
        self.snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.header = w.HTML()
        self.throughput = w.HTML()
        self.engines = w.HTML()
        self.errors = w.HTML()
        self.engine = w.Dropdown(description="engine", options=[])
        self.buttons = {
            "add": w.Button(description="Add engine"),
            "stop": w.Button(description="Stop"),
            "restart": w.Button(description="Restart"),
            "interrupt": w.Button(description="SIGINT"),
            "abort": w.Button(description="Abort queued"),
            "stop_cluster": w.Button(description="Stop cluster", button_style="danger"),
        }
        self.question = w.HTML()
        self.yes = w.Button(description="Yes", button_style="danger")
        self.no = w.Button(description="No")
        self.confirm = w.HBox([self.question, self.yes, self.no], layout={"display": "none"})
        self.said = w.HTML()
        self.widget = w.VBox(
            [
                self.header,
                self.throughput,
                self.engines,
                w.HBox([self.engine, *self.buttons.values()]),
                self.confirm,
                self.said,
                self.errors,
            ]
        )
        self._answer: Callable[[], None] | None = None
        self._wire()
        for target in (self._listen, self._refresh):
            threading.Thread(
                target=target, daemon=True, name=f"par-monitor-{target.__name__}"
            ).start()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def close(self) -> None:
        """Stop watching (the cluster keeps running)."""
        self._stop.set()

    # ---- the source, the state, the widgets --------------------------------------------------

    def _listen(self) -> None:
        self.source.run(self._emit, self._stop)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        """Called on the source's threads."""
        with self._lock:
            self.state.apply(kind, data, time.time())

    def _refresh(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                snap = self.state.snapshot(time.time())
            self.snapshot = snap
            self._set(
                self.header,
                f"<b>cluster {html.escape(snap.cluster_id)}</b> "
                f"{'connected' if snap.connected else html.escape(snap.status_line)}"
                f"<br>{html.escape(_counts(snap))}",
            )
            self._set(self.throughput, html.escape(throughput_text(snap)))
            self._set(self.engines, engines_html(snap))
            self._set(self.errors, errors_html(snap))
            live = [r.id for r in sorted(snap.engines, key=lambda r: r.id) if r.alive]
            if list(self.engine.options) != live:
                self.engine.options = live
            self._stop.wait(self.interval)
        self._set(self.said, "stopped watching")

    @staticmethod
    def _set(widget: Any, value: str) -> None:
        if widget.value != value:  # a widget set to the same value still sends a message
            widget.value = value

    # ---- actions ----------------------------------------------------------------------------

    def _wire(self) -> None:
        act = self.buttons
        act["add"].on_click(lambda _: self._act("add engine", lambda: self.source.add_engines(1)))
        act["stop"].on_click(lambda _: self._on_engine("stop engine {}", self.source.stop_engine))
        act["restart"].on_click(
            lambda _: self._on_engine("restart engine {}", self.source.restart_engine)
        )
        act["interrupt"].on_click(
            lambda _: self._act(
                f"SIGINT to engine {self.engine.value}",
                lambda: self.source.interrupt_engine(self.engine.value),
            )
        )
        act["abort"].on_click(lambda _: self._abort())
        act["stop_cluster"].on_click(
            lambda _: self._ask(
                f"Stop cluster {self.source.cluster_id!r}: every engine and the controller?",
                lambda: self._act("stop cluster", self.source.stop_cluster),
            )
        )
        self.yes.on_click(lambda _: self._answered(True))
        self.no.on_click(lambda _: self._answered(False))

    def _on_engine(self, what: str, act: Callable[[int], None]) -> None:
        eid = self.engine.value  # the engine chosen when the button was pressed
        if eid is not None:
            self._ask(f"{what.format(eid)}?", lambda: self._act(what.format(eid), lambda: act(eid)))

    def _abort(self) -> None:
        by_client = self.source.unstarted()
        total = sum(len(ids) for ids in by_client.values())
        if not total:
            self._set(self.said, "no task is waiting to start: nothing to abort")
            return
        whose = ", ".join(f"{len(ids)} of client {tag}" for tag, ids in by_client.items())
        ids = [mid for mids in by_client.values() for mid in mids]
        self._ask(
            f"Abort {total} tasks not started yet: {whose}? Tasks already running go on.",
            lambda: self._act(f"abort {total} tasks", lambda: self.source.abort(ids)),
        )

    def _ask(self, question: str, then: Callable[[], None]) -> None:
        self.question.value = html.escape(question)
        self._answer = then
        self.confirm.layout.display = "flex"

    def _answered(self, yes: bool) -> None:
        then, self._answer = self._answer, None
        self.confirm.layout.display = "none"
        if yes and then is not None:
            then()

    def _act(self, what: str, fn: Callable[[], object]) -> None:
        """Run an action in a thread and say how it went."""

        def job() -> None:
            try:
                fn()
            except Exception as exc:
                self._set(self.said, html.escape(f"{what} failed: {exc}"))
            else:
                self._set(self.said, html.escape(f"{what}: done"))

        self._set(self.said, html.escape(f"{what}…"))
        threading.Thread(target=job, daemon=True).start()
