"""The Events tab against a real cluster: launcher lifecycle events as they are written."""

from __future__ import annotations

import asyncio

import par
import pytest
from par_tui.events import EventList
from par_tui.header import ClusterHeader

from .conftest import SIZE, live_app, until

pytestmark = pytest.mark.asyncio


async def test_added_engines_show_as_launcher_events() -> None:
    cluster = par.Cluster(n=1, cluster_id="tui-events")
    cluster.start_and_connect_sync().close()
    app = live_app(cluster.cluster_id)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("4")
            assert app.query_one("TabbedContent").active == "events"
            events = app.query_one(EventList)
            # The cluster's start, read from the file before the monitor connected.
            await until(pilot, lambda: len(events.events) >= 4, timeout=10)
            started = [(e.kind, e.event) for e in reversed(events.events)]
            assert started[:4] == [
                ("controller", "starting"),
                ("controller", "running"),
                ("engines", "starting"),
                ("engines", "running"),
            ]

            set_id = await asyncio.to_thread(cluster.add_engines, 1)

            def of_new_set() -> list[str]:
                return [e.event for e in events.events if ("engine_set", set_id) in e.details]

            await until(pilot, lambda: of_new_set() == ["running", "starting"], timeout=10)
            assert events.row_count == len(events.events)
            newest = events.events[0]
            assert (newest.launcher, newest.kind, newest.event) == ("local", "engines", "running")
            assert ("n", "1") in newest.details
            header = str(app.query_one(ClusterHeader).render())
            assert "last launcher event" in header
            assert f"local engines running  engine_set={set_id}  n=1" in header
    finally:
        cluster.stop_cluster_sync()
