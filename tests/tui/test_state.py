"""The monitor's model, from recorded events: no cluster, no terminal."""

from __future__ import annotations

import shutil
from pathlib import Path

from par.launcher import EVENTS_FILE, LaunchContext, Launcher
from par.plugins import launcher_class
from par_tui.source import LauncherEventLog
from par_tui.state import LAUNCHER_EVENTS_KEPT, ClusterState
from par_tui.task_stream import lane

from .recorded import T0, recorded_state


def test_recorded_cluster_counts() -> None:
    snap = recorded_state().snapshot(T0, output_engine=0)
    assert [r.id for r in snap.engines] == [0, 1, 2, 3]
    assert (snap.up, snap.registering, snap.queued, snap.running) == (4, 0, 37, 3)
    assert snap.failed == len(snap.errors) == 5
    assert snap.errors[0].ename == "FileNotFoundError"
    assert sum(snap.throughput) == snap.done + snap.failed


def test_output_joins_lines_split_across_chunks() -> None:
    snap = recorded_state().snapshot(T0, output_engine=0)
    assert [(o.stream, o.text) for o in snap.output] == [
        ("stdout", "loading chunk 0040"),
        ("stdout", "loading chunk 0041"),
        ("stdout", "merged 12 frames"),
        ("stderr", "warning: column 'x7' is empty"),
    ]


def test_lost_engine_is_counted_and_kept_dimmed() -> None:
    state = recorded_state()
    engine = dict(state.engines[3])
    state.on_event("engine_lost", {**engine, "reason": "missed heartbeats"}, T0)
    snap = state.snapshot(T0)
    assert snap.lost == 1 and snap.up == 3
    gone = [r for r in snap.engines if not r.alive]
    assert [(r.id, r.state) for r in gone] == [(3, "lost")]


def test_lane_shows_idle_busy_and_failed() -> None:
    state = ClusterState("x")
    notices = [
        {"id": "a", "e": 0, "st": "ok", "ts": T0 - 10, "tc": T0 - 5},
        {"id": "b", "e": 0, "st": "error", "ts": T0 - 2, "tc": T0 - 1.5, "en": "E"},
    ]
    state.on_event("tasks", {"tasks": notices}, T0)
    spans = state.spans[0]
    text = lane(tuple(spans), T0 - 10, T0, 10)
    assert text.plain == "█████···▓·"
    assert str(text.spans[-2].style) == "red"


def _launcher(cluster_dir: Path, kind: str = "engines") -> Launcher:
    """A real launcher of the given kind (never started): its ``emit`` writes ``events.jsonl``."""
    context = LaunchContext("ev", cluster_dir, cluster_dir / "connection.json")
    return launcher_class(kind, "local")(context)


def test_launcher_events_are_read_once_and_shown_newest_first(tmp_path: Path) -> None:
    log = LauncherEventLog(tmp_path)
    assert log.read_new() == []  # no file yet
    es = _launcher(tmp_path)
    es.emit("starting", engine_set="s1", n=2)
    es.emit("running", engine_set="s1", n=2)
    state = ClusterState("ev")
    state.on_launcher_events(log.read_new())
    assert log.read_new() == []
    es.emit("failed", engine_set="s2", error="no such host\nmore")
    state.on_launcher_events(log.read_new())
    snap = state.snapshot(T0)
    assert [(e.kind, e.event) for e in snap.launcher_events] == [
        ("engines", "failed"),
        ("engines", "running"),
        ("engines", "starting"),
    ]
    newest = snap.launcher_events[0]
    assert newest.launcher == "local" and newest.failure
    assert newest.details_text == "engine_set=s2  error=no such host"
    assert not snap.launcher_events[1].failure
    assert snap.launcher_events[1].details_text == "engine_set=s1  n=2"


def test_launcher_events_survive_the_file_vanishing_and_coming_back(tmp_path: Path) -> None:
    cluster_dir = tmp_path / "clusters" / "ev"
    cluster_dir.mkdir(parents=True)
    log = LauncherEventLog(cluster_dir)
    ctl = _launcher(cluster_dir, "controller")
    for event in ("starting", "running", "stopped"):
        ctl.emit(event)
    assert [e["event"] for e in log.read_new()] == ["starting", "running", "stopped"]

    shutil.rmtree(cluster_dir)  # the cluster stopped: par removes its directory
    assert log.read_new() == []
    cluster_dir.mkdir()
    ctl.emit("starting")  # a new cluster with the same id: its file is read from its start
    assert [e["event"] for e in log.read_new()] == ["starting"]

    # Removed and written again between two reads, longer than before: still read whole.
    (cluster_dir / EVENTS_FILE).unlink()
    ctl.emit("starting")
    ctl.emit("running")
    ctl.emit("failed", error="boom")
    assert [e["event"] for e in log.read_new()] == ["starting", "running", "failed"]

    # A line still being written waits for its end.
    with open(cluster_dir / EVENTS_FILE, "a") as f:
        f.write('{"time": 1, "event": "sto')
    assert log.read_new() == []
    with open(cluster_dir / EVENTS_FILE, "a") as f:
        f.write('pped", "kind": "controller", "launcher": "local"}\n')
    assert [e["event"] for e in log.read_new()] == ["stopped"]


def test_launcher_events_are_bounded() -> None:
    state = ClusterState("ev")
    records = [{"time": T0 + i, "event": "engine_lost", "id": i} for i in range(250)]
    state.on_launcher_events(records)
    events = state.snapshot(T0).launcher_events
    assert len(events) == LAUNCHER_EVENTS_KEPT
    assert events[0].details == (("id", "249"),)
    assert events[-1].details == (("id", "50"),)
