"""What the monitor knows about a cluster: plain state fed by the source, frozen for widgets.

:class:`ClusterState` takes what :mod:`par_tui.source` reports (the
controller's status replies and events, its ``activity`` feed, and the
launchers' lifecycle events) through :meth:`ClusterState.apply`, and keeps
bounded histories. :meth:`ClusterState.snapshot` freezes it into a
:class:`Snapshot` that a face renders: the terminal app's widgets or the
notebook panel. Nothing here touches Textual, ipywidgets or the network.

Counts come from the controller, never from counting what the monitor
happened to see: the header's from its status, each engine's from its
engine records, and the lanes' from its per-second sums of finished tasks
(:mod:`par_tui.activity`), which it also sends, with the errors it kept,
to a monitor that subscribes late. A new connection starts the picture
afresh from what that controller says (engines of an earlier run would
share ids with the new ones); the launchers' events are kept.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .activity import ALL, Activity

THROUGHPUT_SECONDS = 60  # history of the throughput chart
RECENT = 60  # seconds the engine table's busy and mean columns cover
ERRORS_KEPT = 200
OUTPUT_LINES = 500  # per engine
GONE_KEPT = 16  # engines that left, still listed (dimmed) so a loss is noticed
LAUNCHER_EVENTS_KEPT = 200
FAILURE_EVENTS = ("failed", "engine_lost")
# Fields every launcher event has; the rest are that event's details.
EVENT_FIELDS = ("time", "cluster_id", "launcher", "kind", "event")
NO_ENGINE = -1  # the feed's engine for tasks the controller failed before any engine ran them
CPU_STEP = 5  # percent: an idle engine's 0.4% or 1.3% both show as 0, and do not flicker


@dataclass(frozen=True)
class EngineRow:
    """One engine as the engine table shows it."""

    id: int
    uuid: str
    host: str
    pid: int
    launcher: str
    state: str  # registering | up | busy | lost | stopped | gone
    task: str | None  # the running task's message id
    label: str | None  # the running task's label, when its client set one
    task_started: float | None  # when the running task started (the engine's clock)
    queue: int
    completed: int
    failed: int
    busy: float | None  # fraction of the last RECENT seconds spent on tasks
    mean: float | None  # mean run time of the tasks finished in the last RECENT seconds
    cpu: int | None  # percent, as the engine measured itself
    rss: int | None
    heartbeat: int | None  # whole seconds since the last heartbeat

    @property
    def alive(self) -> bool:
        """True while the controller counts this engine."""
        return self.state in ("registering", "up", "busy")


@dataclass(frozen=True)
class ErrorRecord:
    """A failed task: where, what, and the remote traceback."""

    id: str
    engine: int | None
    method: str
    ename: str
    evalue: str
    traceback: str
    time: float
    label: str | None = None


@dataclass(frozen=True)
class OutputLine:
    """One line an engine printed while running a task."""

    stream: str  # stdout | stderr
    text: str


@dataclass(frozen=True)
class LauncherEvent:
    """A launcher lifecycle event, as recorded in the cluster's ``events.jsonl``."""

    seq: int  # how many events the monitor read before this one: a key that stays put
    time: float
    launcher: str
    kind: str  # controller | engines
    event: str  # starting | running | failed | stopped, or launcher-specific (engine_lost, …)
    details: tuple[tuple[str, str], ...]  # the rest of the record: engine_set, n, error, …

    @property
    def failure(self) -> bool:
        """True for events that say something went wrong."""
        return self.event in FAILURE_EVENTS or any(k == "error" for k, _ in self.details)

    @property
    def details_text(self) -> str:
        """The details on one line: ``engine_set=…  n=2`` (a long error by its first line)."""
        return "  ".join(f"{k}={(v.splitlines() or [''])[0]}" for k, v in self.details)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything a face shows, frozen at one moment (compared by identity).

    ``activity`` is the live store the lanes read, bounded by ``now`` when they are drawn:
    only the lanes on screen are ever computed.
    """

    now: float
    connected: bool
    status_line: str
    cluster_id: str
    controller_url: str
    launchers: str
    uptime: float | None
    controller_rss: int | None  # bytes resident in the controller's processes
    controller_cpu: float | None  # percent of one core they used lately
    engines: tuple[EngineRow, ...]
    registering: int
    up: int
    busy: int
    lost: int
    queued: int
    running: int
    done: int
    failed: int
    aborted: int
    throughput: tuple[int, ...]  # tasks finished per second, oldest first, ending before ``now``
    activity: Activity
    errors: tuple[ErrorRecord, ...]  # newest first, the last ERRORS_KEPT
    output_engine: int | None
    output_total: int  # lines ever received from output_engine (to append only what is new)
    output: tuple[OutputLine, ...]
    launcher_events: tuple[LauncherEvent, ...]  # newest first

    @property
    def rate(self) -> float:
        """Tasks finished per second over the last 5 whole seconds."""
        return sum(self.throughput[-5:]) / 5


@dataclass
class _Output:
    lines: deque[OutputLine] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    total: int = 0
    open_stream: str | None = None  # stream whose last line had no newline yet


class ClusterState:
    """The monitor's model of one cluster, updated from what the source reports."""

    def __init__(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id
        self.connected = False
        self.status_line = "connecting"
        self.controller_url = ""
        self.launchers = ""
        self.uptime: float | None = None
        self.uptime_at = 0.0
        self.usage: dict[str, Any] = {}  # the controller's memory and CPU (its status says)
        self.engines: dict[int, dict[str, Any]] = {}
        self.gone: deque[dict[str, Any]] = deque(maxlen=GONE_KEPT)
        self.lost = 0
        self.counts: dict[str, int] = {}
        self.queued = 0
        self.pending = 0
        self.activity = Activity()
        self.errors: deque[ErrorRecord] = deque(maxlen=ERRORS_KEPT)
        self.outputs: dict[int, _Output] = {}
        self.launcher_events: deque[LauncherEvent] = deque(maxlen=LAUNCHER_EVENTS_KEPT)
        self.launcher_events_seen = 0

    def apply(self, kind: str, data: dict[str, Any], now: float) -> None:
        """Take one report of the source (``kind`` as :class:`par_tui.source.MonitorSource`
        names them)."""
        if kind == "status":
            self.on_status(data, now)
        elif kind == "activity":
            self.on_activity(data, now)
        elif kind == "connected":
            self.on_connected(data, now)
        elif kind == "disconnected":
            self.on_disconnected(data, now)
        elif kind == "launcher_events":
            self.on_launcher_events(data["events"])
        elif kind in ("engine_registering", "engine_up"):
            self.engines[int(data["id"])] = data
        elif kind in ("engine_lost", "engine_stopped"):
            state = kind.removeprefix("engine_")
            if state == "lost":
                self.lost += 1
            self._leave(int(data["id"]), state, data)

    # ---- connection ------------------------------------------------------------------------

    def on_connected(self, data: dict[str, Any], now: float) -> None:
        """A controller answered: start afresh from what it says (its engines, counts,
        recent activity and errors come next)."""
        self.connected = True
        self.status_line = "connected"
        self.controller_url = str(data.get("controller_url", ""))
        self.launchers = str(data.get("launchers", ""))
        self.engines.clear()
        self.gone.clear()
        self.lost = 0
        self.counts = {}
        self.usage = {}
        self.activity.clear()
        self.activity.known_from(now)
        self.errors.clear()
        self.outputs.clear()

    def on_disconnected(self, data: dict[str, Any], now: float) -> None:
        """The controller went away; the source keeps trying to reconnect."""
        self.connected = False
        self.status_line = f"disconnected: {data.get('reason', 'no answer')}"
        for eid in list(self.engines):
            self._leave(eid, "gone")

    # ---- status replies and the activity feed ----------------------------------------------

    def on_status(self, status: dict[str, Any], now: float) -> None:
        """Take the controller's status reply as the truth about engines and counts (a
        changed-only reply, with ``engine_ids``, names the engines that did not change)."""
        self.launchers = str(status.get("launchers", self.launchers))
        self.uptime = float(status.get("uptime", 0.0))
        self.uptime_at = now
        self.usage = dict(status.get("usage") or {})
        self.counts = dict(status.get("counts", {}))
        self.queued = int(status.get("queued", 0))
        self.pending = int(status.get("pending", 0))
        changed = {int(e["id"]): e for e in status.get("engines", [])}
        ids = status.get("engine_ids")
        if ids is None:
            seen = set(changed)
        else:
            seen = {int(eid) for eid in ids}
            late = {int(eid): age for eid, age in status.get("late", ())}
            for eid in seen.difference(changed):
                engine = self.engines.get(eid)
                if engine is not None:  # as last sent, its heartbeat fresh unless late
                    engine["heartbeat_age"] = late.get(eid, 0.0)
        self.engines.update(changed)
        for eid in [eid for eid in self.engines if eid not in seen]:
            self._leave(eid, "gone")  # left while an event was missed

    def on_activity(self, data: dict[str, Any], now: float) -> None:
        """Add the controller's per-second sums of finished tasks, its errors and output (a
        backlog, all it kept, takes the place of what came before)."""
        if data.get("backlog"):
            self.activity.clear()
            self.errors.clear()
            self.activity.known_from(float(data.get("since") or now))
        sums: dict[tuple[object, int], list[float]] = {}  # summed per ring before adding
        groups = self._groups
        for eid, second, busy, done, failed in data.get("b", ()):
            for key in groups(eid):
                total = sums.get((key, second))
                if total is None:
                    sums[(key, second)] = [busy, done, failed]
                else:
                    total[0] += busy
                    total[1] += done
                    total[2] += failed
        self.activity.add(sums)
        for n in data.get("err", ()):
            self.errors.append(_error(n, now))
        for eid, stream, text in data.get("out", ()):
            self._add_output(int(eid), str(stream), str(text))

    def _groups(self, eid: int) -> tuple[object, ...]:
        """The rings an engine's work adds to: its own, its host's, the cluster's."""
        engine = self.engines.get(eid)
        if eid == NO_ENGINE:
            return (ALL,)
        if engine is None:
            return (ALL, eid)
        return (ALL, eid, ("host", str(engine.get("host", ""))))

    def on_launcher_events(self, records: list[dict[str, Any]]) -> None:
        """Add events newly read from the cluster's ``events.jsonl`` (oldest first)."""
        for r in records:
            details = tuple((str(k), str(v)) for k, v in r.items() if k not in EVENT_FIELDS)
            self.launcher_events.append(
                LauncherEvent(
                    seq=self.launcher_events_seen,
                    time=float(r.get("time") or 0.0),
                    launcher=str(r.get("launcher") or "?"),
                    kind=str(r.get("kind") or "?"),
                    event=str(r.get("event") or "?"),
                    details=details,
                )
            )
            self.launcher_events_seen += 1

    def _leave(self, eid: int, state: str, data: dict[str, Any] | None = None) -> None:
        engine = self.engines.pop(eid, None) or data
        if engine is not None:
            self.gone.append({**engine, **(data or {}), "state": state})

    def _add_output(self, eid: int, stream: str, text: str) -> None:
        if not text:
            return
        out = self.outputs.setdefault(eid, _Output())
        parts = text.split("\n")
        if out.open_stream == stream and out.lines:
            # The previous chunk of this stream ended mid-line: continue that line.
            last = out.lines.pop()
            out.total -= 1
            parts[0] = last.text + parts[0]
        ends_open = parts[-1] != ""
        if not ends_open:
            parts.pop()
        for part in parts:
            out.lines.append(OutputLine(stream, part))
            out.total += 1
        out.open_stream = stream if ends_open else None

    # ---- freezing ----------------------------------------------------------------------------

    def snapshot(self, now: float, output_engine: int | None = None) -> Snapshot:
        """Freeze the state at ``now`` for the widgets."""
        rows = [self._row(e, _live_state(e), now) for e in self.engines.values()]
        live = {str(e.get("uuid")) for e in self.engines.values()}
        for e in reversed(self.gone):  # newest first, so a repeated uuid keeps its last state
            if str(e.get("uuid")) not in live:
                live.add(str(e.get("uuid")))
                rows.append(self._row(e, str(e["state"]), now))
        up = sum(1 for r in rows if r.state in ("up", "busy"))
        last = int(now)  # the second now is in is not over yet
        per_second = self.activity.cells(ALL, 1, last - THROUGHPUT_SECONDS, THROUGHPUT_SECONDS)
        out = self.outputs.get(output_engine) if output_engine is not None else None
        return Snapshot(
            now=now,
            connected=self.connected,
            status_line=self.status_line,
            cluster_id=self.cluster_id,
            controller_url=self.controller_url,
            launchers=self.launchers,
            uptime=None
            if self.uptime is None or not self.connected
            else self.uptime + (now - self.uptime_at),
            controller_rss=self.usage.get("rss") if self.connected else None,
            controller_cpu=self.usage.get("cpu") if self.connected else None,
            engines=tuple(rows),
            registering=len(self.engines) - up,
            up=up,
            busy=sum(1 for r in rows if r.state == "busy"),
            lost=self.lost,
            queued=self.queued,
            running=max(self.pending - self.queued, 0),
            done=int(self.counts.get("completed", 0)),
            failed=int(self.counts.get("failed", 0)),
            aborted=int(self.counts.get("aborted", 0)),
            throughput=tuple(c.done + c.failed for c in per_second),
            activity=self.activity,
            errors=tuple(reversed(self.errors)),
            output_engine=output_engine,
            output_total=out.total if out else 0,
            output=tuple(out.lines) if out else (),
            launcher_events=tuple(reversed(self.launcher_events)),
        )

    def _row(self, e: dict[str, Any], state: str, now: float) -> EngineRow:
        """An engine dict from the controller as a table row."""
        stats = e.get("stats") or {}
        alive = state in ("up", "busy", "registering")
        eid = int(e["id"])
        recent = self.activity.total(eid, 1, int(now) - RECENT, RECENT) if alive else None
        finished = recent.done + recent.failed if recent else 0
        started = stats.get("task_started") if alive else None
        running = 0.0 if started is None else min(max(now - started, 0.0), RECENT)
        cpu, hb = stats.get("cpu"), e.get("heartbeat_age")
        return EngineRow(
            id=eid,
            uuid=str(e.get("uuid") or eid),
            host=str(e.get("host", "")),
            pid=int(e.get("pid", 0)),
            launcher=str(e.get("launcher") or (e.get("info") or {}).get("launcher") or "?"),
            state=state,
            task=stats.get("task") if alive else None,
            label=e.get("task_label") if alive else None,
            task_started=started,
            queue=int(e.get("queue", 0)) if alive else 0,
            completed=int(e.get("completed", 0)),
            failed=int(e.get("failed", 0)),
            busy=min((recent.busy + running) / RECENT, 1.0) if recent else None,
            mean=recent.busy / finished if recent and finished else None,
            cpu=CPU_STEP * round(cpu / CPU_STEP) if alive and cpu is not None else None,
            rss=stats.get("rss") if alive else None,
            heartbeat=int(hb) if alive and hb is not None else None,
        )


def _live_state(e: dict[str, Any]) -> str:
    """``busy`` while the engine's heartbeats name a running task."""
    if e.get("state") != "up":
        return "registering"
    return "busy" if (e.get("stats") or {}).get("task") else "up"


def _error(n: dict[str, Any], now: float) -> ErrorRecord:
    """A failed task from the controller's notice of it."""
    eid = n.get("e")
    return ErrorRecord(
        id=str(n.get("id")),
        engine=None if eid is None or eid == NO_ENGINE else int(eid),
        method=str(n.get("m") or "apply"),
        ename=str(n.get("en") or "Error"),
        evalue=str(n.get("ev") or ""),
        traceback=str(n.get("tb") or ""),
        time=float(n.get("tc") or now),
        label=n.get("lb"),
    )
