"""Snapshots of the main screens, drawn from a recorded cluster (no timers, no live data)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from par_tui.app import MonitorApp

from .recorded import T0, many_engines_state, recorded_state

SIZE = (120, 35)


@pytest.fixture(autouse=True)
def _utc() -> Iterator[None]:
    """Times of day on screen do not depend on the machine's time zone."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = old
    time.tzset()


def recorded_app(read_only: bool = False) -> MonitorApp:
    """The monitor showing the recorded cluster, frozen at T0."""
    return MonitorApp(state=recorded_state(), read_only=read_only, clock=lambda: T0)


def test_engines_and_task_stream(snap_compare) -> None:
    assert snap_compare(recorded_app(), terminal_size=SIZE)


def test_errors(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["2"], terminal_size=SIZE)


async def _open_first_traceback(pilot) -> None:
    """Open the Errors tab, then the first error's traceback, letting each screen settle
    (under load, a snapshot taken straight after the keys could miss the dialog)."""
    for key in ("2", "enter"):
        await pilot.press(key)
        await pilot.pause()
    await pilot.wait_for_scheduled_animations()


def test_traceback(snap_compare) -> None:
    assert snap_compare(recorded_app(), run_before=_open_first_traceback, terminal_size=SIZE)


def test_output(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["3"], terminal_size=SIZE)


def test_help(snap_compare) -> None:
    assert snap_compare(recorded_app(read_only=True), press=["question_mark"], terminal_size=SIZE)


def test_disconnected(snap_compare) -> None:
    app = recorded_app()
    app.state.on_disconnected({"reason": "the controller stopped"}, T0)
    assert snap_compare(app, terminal_size=SIZE)


def test_events(snap_compare) -> None:
    assert snap_compare(recorded_app(), press=["4"], terminal_size=SIZE)


def test_a_thousand_engines_per_host_failing_first(snap_compare) -> None:
    app = MonitorApp(state=many_engines_state(), clock=lambda: T0)
    # s eight times: sorted by failed tasks, most first; g: one lane per host
    assert snap_compare(app, press=["s"] * 8 + ["g"], terminal_size=SIZE)
