"""The monitor's model, from recorded events: no cluster, no terminal."""

from __future__ import annotations

from par_tui.state import ClusterState
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
