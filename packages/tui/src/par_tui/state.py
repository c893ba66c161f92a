"""What the monitor knows about a cluster: plain state fed by the source, frozen for widgets.

:class:`ClusterState` takes the controller's status replies and events, and
the launchers' lifecycle events (as dicts, exactly as :mod:`par_tui.source`
hands them over), and keeps bounded histories. :meth:`ClusterState.snapshot`
freezes it into a :class:`Snapshot` that widgets render; nothing here
touches Textual or the network, so the widgets can be driven from recorded
events.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

THROUGHPUT_SECONDS = 120  # history kept for the throughput chart
LANE_TASKS = 256  # recent tasks kept per engine for the task stream
ERRORS_KEPT = 200
OUTPUT_LINES = 500  # per engine
GONE_KEPT = 16  # engines that left, still listed (dimmed) so a loss is noticed
LAUNCHER_EVENTS_KEPT = 200
FAILURE_EVENTS = ("failed", "engine_lost")
# Fields every launcher event has; the rest are that event's details.
EVENT_FIELDS = ("time", "cluster_id", "launcher", "kind", "event")


@dataclass(frozen=True)
class EngineRow:
    """One engine as the engine table shows it."""

    id: int
    uuid: str
    host: str
    pid: int
    launcher: str
    state: str  # registering | up | lost | stopped | gone
    task: str | None
    queue: int
    completed: int
    failed: int
    cpu: float | None
    rss: int | None
    heartbeat_age: float | None

    @property
    def alive(self) -> bool:
        """True while the controller counts this engine."""
        return self.state in ("registering", "up")


@dataclass(frozen=True)
class TaskSpan:
    """A task's time on an engine (``end`` is None while it runs)."""

    id: str
    engine: int
    start: float
    end: float | None
    status: str  # ok | error | aborted | running


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
    """Everything the widgets show, frozen at one moment (compared by identity)."""

    now: float
    connected: bool
    status_line: str
    cluster_id: str
    controller_url: str
    launchers: str
    uptime: float | None
    engines: tuple[EngineRow, ...]
    registering: int
    up: int
    lost: int
    queued: int
    running: int
    done: int
    failed: int
    aborted: int
    throughput: tuple[int, ...]  # tasks finished per second, oldest first, ending at ``now``
    lanes: tuple[tuple[int, tuple[TaskSpan, ...]], ...]  # (engine id, spans) per live engine
    errors: tuple[ErrorRecord, ...]  # newest first
    output_engine: int | None
    output_total: int  # lines ever received from output_engine (to append only what is new)
    output: tuple[OutputLine, ...]
    launcher_events: tuple[LauncherEvent, ...]  # newest first


@dataclass
class _Output:
    lines: deque[OutputLine] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    total: int = 0
    open_stream: str | None = None  # stream whose last line had no newline yet


class ClusterState:
    """The monitor's model of one cluster, updated from status replies and events."""

    def __init__(self, cluster_id: str) -> None:
        self.cluster_id = cluster_id
        self.connected = False
        self.status_line = "connecting"
        self.controller_url = ""
        self.launchers = ""
        self.uptime: float | None = None
        self.uptime_at = 0.0
        self.engines: dict[int, dict[str, Any]] = {}
        self.gone: deque[dict[str, Any]] = deque(maxlen=GONE_KEPT)
        self.lost = 0
        self.counts: dict[str, int] = {}
        self.queued = 0
        self.pending = 0
        self.per_second: dict[int, int] = {}
        self.spans: dict[int, deque[TaskSpan]] = {}
        self.running: dict[int, TaskSpan] = {}
        self.errors: deque[ErrorRecord] = deque(maxlen=ERRORS_KEPT)
        self.outputs: dict[int, _Output] = {}
        self.launcher_events: deque[LauncherEvent] = deque(maxlen=LAUNCHER_EVENTS_KEPT)
        self.launcher_events_seen = 0

    # ---- connection ------------------------------------------------------------------------

    def on_connected(self, data: dict[str, Any], now: float) -> None:
        """A (new) controller answered: forget its predecessor's engines, keep the history."""
        self.connected = True
        self.status_line = "connected"
        self.controller_url = str(data.get("controller_url", ""))
        self.launchers = str(data.get("launchers", ""))
        self.engines.clear()
        self.running.clear()

    def on_disconnected(self, data: dict[str, Any], now: float) -> None:
        """The controller went away; the source keeps trying to reconnect."""
        self.connected = False
        self.status_line = f"disconnected: {data.get('reason', 'no answer')}"
        for eid in list(self.engines):
            self._leave(eid, "gone")
        self.running.clear()

    # ---- status replies ----------------------------------------------------------------------

    def on_status(self, status: dict[str, Any], now: float) -> None:
        """Take the controller's status reply as the truth about engines and counts."""
        self.launchers = str(status.get("launchers", self.launchers))
        self.uptime = float(status.get("uptime", 0.0))
        self.uptime_at = now
        self.counts = dict(status.get("counts", {}))
        self.queued = int(status.get("queued", 0))
        self.pending = int(status.get("pending", 0))
        seen = set()
        for e in status.get("engines", []):
            eid = int(e["id"])
            seen.add(eid)
            self.engines[eid] = e
            self._track_running(eid, (e.get("stats") or {}).get("task"), now)
        for eid in [eid for eid in self.engines if eid not in seen]:
            self._leave(eid, "gone")  # left while an event was missed (a reconnect)

    def _track_running(self, eid: int, task: str | None, now: float) -> None:
        """Note when a task was first seen running (heartbeats carry the running task's id)."""
        current = self.running.get(eid)
        if task is None:
            self.running.pop(eid, None)
        elif current is None or current.id != task:
            self.running[eid] = TaskSpan(task, eid, now, None, "running")

    # ---- events ------------------------------------------------------------------------------

    def on_event(self, kind: str, data: dict[str, Any], now: float) -> None:
        """Apply one event from the controller's stream."""
        if kind in ("engine_registering", "engine_up"):
            self.engines[int(data["id"])] = data
        elif kind in ("engine_lost", "engine_stopped"):
            state = kind.removeprefix("engine_")
            if state == "lost":
                self.lost += 1
            self._leave(int(data["id"]), state, data)
        elif kind == "tasks":
            for notice in data.get("tasks", []):
                self._on_task(notice, now)
        elif kind == "stream":
            eid = data.get("e")
            if eid is not None:
                self._add_output(int(eid), str(data.get("n", "stdout")), str(data.get("d", "")))

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
        self.running.pop(eid, None)
        if engine is not None:
            self.gone.append({**engine, **(data or {}), "state": state})

    def _on_task(self, n: dict[str, Any], now: float) -> None:
        status = str(n.get("st") or "ok")
        end = float(n.get("tc") or now)
        second = int(end)
        self.per_second[second] = self.per_second.get(second, 0) + 1
        if len(self.per_second) > THROUGHPUT_SECONDS:
            for old in sorted(self.per_second)[: len(self.per_second) - THROUGHPUT_SECONDS]:
                del self.per_second[old]
        eid = n.get("e")
        if eid is not None:
            eid = int(eid)
            start = float(n.get("ts") or end)
            lane = self.spans.setdefault(eid, deque(maxlen=LANE_TASKS))
            lane.append(TaskSpan(str(n.get("id")), eid, start, end, status))
            running = self.running.get(eid)
            if running is not None and running.id == n.get("id"):
                del self.running[eid]
            if n.get("o"):
                self._add_output(eid, "stdout", str(n["o"]))
            if n.get("r"):
                self._add_output(eid, "stderr", str(n["r"]))
        if status == "error":
            self.errors.append(
                ErrorRecord(
                    id=str(n.get("id")),
                    engine=eid,
                    method=str(n.get("m") or "apply"),
                    ename=str(n.get("en") or "Error"),
                    evalue=str(n.get("ev") or ""),
                    traceback=str(n.get("tb") or ""),
                    time=end,
                )
            )

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

    def snapshot(self, now: float, output_engine: int | None = None, seconds: int = 60) -> Snapshot:
        """Freeze the state at ``now`` for the widgets."""
        rows = [
            _row(e, "up" if e.get("state") == "up" else "registering")
            for e in self.engines.values()
        ]
        live = {str(e.get("uuid")) for e in self.engines.values()}
        for e in reversed(self.gone):  # newest first, so a repeated uuid keeps its last state
            if str(e.get("uuid")) not in live:
                live.add(str(e.get("uuid")))
                rows.append(_row(e, str(e["state"])))
        up = sum(1 for e in self.engines.values() if e.get("state") == "up")
        first = int(now) - seconds + 1
        throughput = tuple(self.per_second.get(s, 0) for s in range(first, int(now) + 1))
        lanes = []
        for eid in sorted(self.engines):
            spans = [s for s in self.spans.get(eid, ()) if (s.end or now) >= now - seconds]
            if eid in self.running:
                spans.append(self.running[eid])
            lanes.append((eid, tuple(spans)))
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
            engines=tuple(rows),
            registering=len(self.engines) - up,
            up=up,
            lost=self.lost,
            queued=self.queued,
            running=max(self.pending - self.queued, 0),
            done=int(self.counts.get("completed", 0)),
            failed=int(self.counts.get("failed", 0)),
            aborted=int(self.counts.get("aborted", 0)),
            throughput=throughput,
            lanes=tuple(lanes),
            errors=tuple(reversed(self.errors)),
            output_engine=output_engine,
            output_total=out.total if out else 0,
            output=tuple(out.lines) if out else (),
            launcher_events=tuple(reversed(self.launcher_events)),
        )


def _row(e: dict[str, Any], state: str) -> EngineRow:
    """An engine dict from the controller as a table row."""
    stats = e.get("stats") or {}
    alive = state in ("up", "registering")
    return EngineRow(
        id=int(e["id"]),
        uuid=str(e.get("uuid") or e["id"]),
        host=str(e.get("host", "")),
        pid=int(e.get("pid", 0)),
        launcher=str(e.get("launcher") or (e.get("info") or {}).get("launcher") or "?"),
        state=state,
        task=stats.get("task") if alive else None,
        queue=int(e.get("queue", 0)) if alive else 0,
        completed=int(e.get("completed", 0)),
        failed=int(e.get("failed", 0)),
        cpu=stats.get("cpu") if alive else None,
        rss=stats.get("rss") if alive else None,
        heartbeat_age=e.get("heartbeat_age") if alive else None,
    )
