"""A monitor that missed activity events asks for them again, against a real controller.

The controller skips a monitor's activity events while the monitor is too slow
to take them (stopped, or behind a congested link: see
``par.controller.delivery``). A test cannot stop its own process, so the link
here loses the events at the source's edge while ``losing`` is set; everything
else (the controller, its backlog, the resubscription) is real.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import par
import pytest
from par_tui.app import MonitorApp
from par_tui.errors import ErrorList
from par_tui.source import MonitorSource
from par_tui.task_stream import Lanes

from .conftest import SIZE, until

pytestmark = pytest.mark.asyncio


class LossySource(MonitorSource):
    """A source whose link loses the activity events sent while ``losing`` is set."""

    def __init__(self, cluster_id: str) -> None:
        super().__init__(cluster_id, interval=0.2)
        self.losing = threading.Event()
        self.lost = 0

    def _on_client_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "activity" and not data.get("backlog") and self.losing.is_set():
            self.lost += 1
            return
        super()._on_client_event(kind, data)


def fail_some(x: int) -> int:
    """Fail for every 500th input."""
    if x % 500 == 499:
        raise ValueError(f"input {x} is bad")
    return x


async def test_missed_activity_is_fetched_again_and_the_counts_come_true() -> None:
    cluster = par.Cluster(n=2)
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(2, timeout=60)
        source = LossySource(cluster.cluster_id)
        source.connect()
        app = MonitorApp(source, refresh=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.snapshot.up == 2)
            lv = rc.load_balanced_view()
            lv.map_async(fail_some, range(1000)).wait(timeout=120)  # heard: 2 failures
            await until(pilot, lambda: len(app.snapshot.errors) == 2)

            # The last events of a second map are lost, and nothing comes after them.
            source.losing.set()
            lv.map_async(fail_some, range(1000)).wait(timeout=120)
            time.sleep(1.5)  # the feed has sent its last event for the map
            source.losing.clear()
            assert source.lost > 0

            truth = rc.status()
            engines = {e["id"]: (e["completed"], e["failed"]) for e in truth["engines"]}
            assert sum(failed for _, failed in engines.values()) == 4

            def agrees() -> bool:
                lanes = {lane.key: (v.done, v.failed) for lane, v in app.query_one(Lanes).views()}
                snap = app.snapshot
                return (
                    all(lanes.get(eid) == counts for eid, counts in engines.items())
                    and lanes["all"] == (snap.done, snap.failed) == (1996, 4)
                    and len(snap.errors) == 4
                )

            await until(pilot, agrees)
            await pilot.press("2")
            shown = [e.evalue for e in app.query_one(ErrorList).records]
            assert shown.count("input 999 is bad") == shown.count("input 499 is bad") == 2
    finally:
        rc.close()
        cluster.stop_cluster_sync()
