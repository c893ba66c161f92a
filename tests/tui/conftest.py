"""Helpers for the monitor's tests: a live app on a real cluster, and waiting on it."""

from __future__ import annotations

import time
from collections.abc import Callable

from par_tui.app import MonitorApp
from par_tui.source import MonitorSource
from textual.pilot import Pilot

SIZE = (120, 35)


def live_app(cluster_id: str, read_only: bool = False) -> MonitorApp:
    """A monitor connected to a running cluster, refreshing fast so tests stay short."""
    source = MonitorSource(cluster_id, interval=0.2)
    source.connect()
    return MonitorApp(source, read_only=read_only, refresh=0.2)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 30) -> None:
    """Let the app run until ``condition()`` holds (fail after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s")
        await pilot.pause(0.1)
