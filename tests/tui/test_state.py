"""The monitor's model, from recorded events: no cluster, no terminal."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from par import protocol
from par.controller.feed import Feed
from par.launcher import EVENTS_FILE, LaunchContext, Launcher
from par.plugins import launcher_class
from par_tui import format
from par_tui.activity import IDLE, SLOTS, Cell, Ring
from par_tui.source import LauncherEventLog
from par_tui.state import LAUNCHER_EVENTS_KEPT, ClusterState
from par_tui.task_stream import Lane, view

from .recorded import T0, feed_events, many_engines_state, recorded_state, task_id


def test_recorded_cluster_counts() -> None:
    snap = recorded_state().snapshot(T0, output_engine=0)
    assert [r.id for r in snap.engines] == [0, 1, 2, 3]
    assert (snap.up, snap.busy, snap.registering, snap.queued, snap.running) == (4, 3, 0, 37, 3)
    assert snap.failed == len(snap.errors) == 5
    assert snap.errors[0].ename == "FileNotFoundError"
    assert sum(snap.throughput) == snap.done + snap.failed


def test_the_controllers_memory_and_cpu_show_while_it_is_connected() -> None:
    state = recorded_state()
    snap = state.snapshot(T0)
    assert (snap.controller_rss, snap.controller_cpu) == (112_400_000, 7.5)
    assert (format.size(snap.controller_rss), format.percent(snap.controller_cpu)) == (
        "107.2M",
        "8%",
    )
    state.apply("status", {"uptime": 400.0, "usage": {"rss": 2 << 30, "cpu": 180.0}}, T0 + 1)
    snap = state.snapshot(T0 + 1)
    assert (format.size(snap.controller_rss), format.percent(snap.controller_cpu)) == (
        "2.0G",
        "180%",
    )
    state.apply("disconnected", {"reason": "the controller stopped"}, T0 + 2)
    snap = state.snapshot(T0 + 2)
    assert (snap.controller_rss, snap.controller_cpu) == (None, None)  # not a stale figure
    assert format.percent(snap.controller_cpu) == "-"
    state.apply("connected", {"controller_url": "tcp://10.0.0.5:50200"}, T0 + 5)
    state.apply("status", {"uptime": 1.0}, T0 + 5)  # an older controller says nothing
    assert state.snapshot(T0 + 5).controller_rss is None


def test_the_busy_state_says_how_long_the_task_has_run() -> None:
    snap = recorded_state().snapshot(T0)
    states = {r.id: (r.state, r.task_started) for r in snap.engines}
    assert states[3] == ("up", None)
    assert states[1] == ("busy", T0 - 40.3)


def test_each_lane_sums_to_its_engines_counts() -> None:
    snap = recorded_state().snapshot(T0)
    rows = {r.id: r for r in snap.engines}
    for row in snap.engines:
        drawn = view(snap, Lane(row.id, f"e{row.id}", (row,)), 1, 100)
        assert (drawn.done, drawn.failed) == (row.completed, row.failed)
    whole = view(snap, Lane("all", "all", tuple(rows.values())), 1, 100)
    assert (whole.done, whole.failed) == (snap.done, snap.failed)


def test_ten_second_cells_count_what_one_second_cells_count() -> None:
    snap = many_engines_state().snapshot(T0)
    for key in ("all", ("host", "node07"), 3):
        lane = Lane(key, str(key), snap.engines)
        fine, coarse = view(snap, lane, 1, 100), view(snap, lane, 10, 10)
        assert (fine.done, fine.failed) == (coarse.done, coarse.failed)
    assert view(snap, Lane("all", "all", snap.engines), 10, 10).failed == snap.failed


def test_a_ring_forgets_what_is_older_than_its_slots() -> None:
    ring = Ring(1)
    second = int(T0)
    for k in range(3):
        ring.add(second + k, 0.5, 1, k == 2)
    assert ring.total(second, 3) == Cell(1.5, 3, 1)
    ring.add(second + SLOTS + 1, 1.0, 1, 0)  # the slots of the first two seconds are reused
    assert ring.total(second, SLOTS + 2) == Cell(1.5, 2, 1)
    assert ring.cells(second + SLOTS, 3) == [IDLE, Cell(1.0, 1, 0), IDLE]
    ring.add(second, 9.0, 9, 9)  # older than anything kept: dropped
    assert ring.total(second - SLOTS, 3 * SLOTS) == Cell(1.5, 2, 1)


def test_short_ids_tell_tasks_and_clients_apart() -> None:
    ids = [task_id(0x1B), task_id(0x1C), task_id(0x1B, client=1)]
    shown = [format.short_id(mid) for mid in ids]
    assert shown == ["3fa9-1b", "3fa9-1c", "77c0-1b"]
    assert format.task(ids[0], "load:42") == "3fa9-1b load:42"
    assert format.short_id("0f8e7d6c5b4a39281706f5e4d3c2b1a0") == "0f8e7d6c"  # a uuid hex


def test_rates_and_counts_fit_their_columns() -> None:
    # The throughput label is 14 characters wide: "12.3k/s now", "peak 1000.0k/s".
    for rate in (0.04, 8.5, 99.96, 120, 9999.4, 12345, 999_999):
        assert len(f"{format.rate(rate)} now") <= 14 and len(f"peak {format.rate(rate)}") <= 14
    assert [format.count(n) for n in (7, 99_999, 123_456, 20_000_000)] == [
        "7",
        "99999",
        "123k",
        "20.0M",
    ]


def test_errors_are_newest_first_with_their_labels() -> None:
    errors = recorded_state().snapshot(T0).errors
    assert [e.time for e in errors] == sorted((e.time for e in errors), reverse=True)
    assert all(e.label and e.label.startswith("chunk-") for e in errors)
    assert len({format.short_id(e.id) for e in errors}) == len(errors)


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
    state.apply("engine_lost", {**engine, "reason": "missed heartbeats"}, T0)
    snap = state.snapshot(T0)
    assert snap.lost == 1 and snap.up == 3
    gone = [r for r in snap.engines if not r.alive]
    assert [(r.id, r.state) for r in gone] == [(3, "lost")]


def test_a_changed_only_status_keeps_the_engines_it_does_not_name() -> None:
    state = recorded_state()
    before = {r.id: r for r in state.snapshot(T0).engines}
    engine = {**state.engines[0], "completed": before[0].completed + 1}
    status = {"engines": [engine], "engine_ids": [0, 1, 2], "late": [[2, 7.5]]}
    state.apply("status", {**status, "counts": {"completed": 1}}, T0 + 1)
    after = {r.id: r for r in state.snapshot(T0 + 1).engines}
    assert after[0].completed == before[0].completed + 1
    assert (after[1].task, after[1].completed) == (before[1].task, before[1].completed)
    assert (after[1].heartbeat, after[2].heartbeat) == (0, 7)  # 1 fresh, 2 late
    assert after[2].completed == before[2].completed
    assert after[3].state == "gone"  # no longer among the controller's engines


def test_a_new_connection_forgets_the_engines_of_the_earlier_run() -> None:
    state = recorded_state()
    state.apply("disconnected", {"reason": "the controller stopped"}, T0)
    assert {r.state for r in state.snapshot(T0).engines} == {"gone"}
    state.apply("connected", {"controller_url": "tcp://10.0.0.5:50200"}, T0 + 5)
    snap = state.snapshot(T0 + 5)
    assert snap.engines == () and snap.errors == () and snap.done == 0


def test_a_second_backlog_takes_the_place_of_the_sums() -> None:
    """A monitor that missed an event asks again: the backlog is then the whole truth."""
    sent: list[dict] = []
    feed = Feed(lambda data, to: sent.append(data))
    feed.subscribe(b"m")
    now = time.time()
    for k in range(5):
        feed.ran(0, now - 3 + k * 0.5, now - 2.9 + k * 0.5, failed=k == 4)
    feed.error({"id": "t4", "e": 0, "tc": now - 0.9}, protocol.encode({"ename": "E"}), None)
    feed.flush()
    feed.subscribe(b"m")  # the monitor missed the event above, and asks again
    assert [d["seq"] for d in sent] == [0, 1, 1]
    state = ClusterState("x")
    state.apply("connected", {}, now - 10)
    for data in sent:
        state.apply("activity", data, now)
    snap = state.snapshot(now + 1)
    assert (snap.activity.total(0, 1, int(now) - 10, 12).done, len(snap.errors)) == (4, 1)


def test_lane_shows_idle_busy_and_failed() -> None:
    state = ClusterState("x")
    state.apply("connected", {}, T0 - 10)
    engine = {"id": 0, "uuid": "e0", "host": "h", "state": "up", "stats": {}}
    state.apply("status", {"engines": [engine]}, T0 - 10)
    tasks = [("a", 0, T0 - 10, T0 - 5, None), ("b", 0, T0 - 2, T0 - 1.5, "chunk-b")]
    for data in feed_events(tasks):
        state.apply("activity", data, T0)
    snap = state.snapshot(T0)
    drawn = view(snap, Lane(0, "e0", snap.engines), 1, 11)
    # 5 s of work, done at T0-5 (the mark of a task ending), idle, half a second that failed
    assert "".join(c for c, _ in drawn.cells) == "█████░··▓··"
    assert drawn.cells[-3] == ("▓", "error")
    assert (drawn.done, drawn.failed) == (1, 1)


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
