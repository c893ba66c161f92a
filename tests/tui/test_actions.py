"""Actions from the keyboard against a real cluster: add, stop, read-only, stop and come back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import par
import pytest
from par_tui.confirm import Confirm
from par_tui.engine_table import EngineTable

from .conftest import SIZE, live_app, until

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def small() -> Iterator[par.Cluster]:
    """A controller and 2 local engines, for tests that change the cluster."""
    c = par.Cluster(n=2)
    rc = c.start_and_connect_sync()
    rc.close()
    try:
        yield c
    finally:
        c.stop_cluster_sync()


async def test_add_engine_key_makes_a_new_row(small: par.Cluster) -> None:
    app = live_app(small.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(EngineTable)
        await until(pilot, lambda: len(table.rows) == 2)
        await pilot.press("a")
        await until(pilot, lambda: len(table.rows) == 3)
        await until(pilot, lambda: app.snapshot.up == 3)
        new = next(r for r in app.snapshot.engines if r.id == 2)
        assert new.launcher == "local"


async def test_stop_engine_asks_then_stops_it(small: par.Cluster) -> None:
    app = live_app(small.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot.up >= 2 and app.selected_engine is not None)
        victim = app.selected_engine
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await until(
            pilot,
            lambda: any(r.id == victim and r.state == "stopped" for r in app.snapshot.engines),
        )
        assert victim not in [r.id for r in app.snapshot.engines if r.alive]


async def test_read_only_hides_and_refuses_actions(small: par.Cluster) -> None:
    app = live_app(small.cluster_id, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot.up >= 1)
        before = app.snapshot.up
        footer_keys = {b.binding.key for b in app.active_bindings.values() if b.enabled}
        assert not footer_keys & {"a", "k", "r", "i", "x", "S"}
        assert "[read-only]" in str(app.query_one("ClusterHeader").render())
        await pilot.press("a", "S")
        await pilot.pause(1.0)
        assert not isinstance(app.screen, Confirm)
        assert app.snapshot.up == before


async def test_stop_cluster_then_it_comes_back() -> None:
    c = par.Cluster(n=1, cluster_id="tui-comeback")
    c.start_and_connect_sync().close()
    app = live_app(c.cluster_id)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.snapshot.up == 1)
            await pilot.press("S")
            await until(pilot, lambda: isinstance(app.screen, Confirm))
            await pilot.press("y")
            await until(pilot, lambda: not app.snapshot.connected)
            assert "disconnected" in str(app.query_one("ClusterHeader").render())

            c = par.Cluster(n=2, cluster_id="tui-comeback")
            await asyncio.to_thread(lambda: c.start_and_connect_sync().close())
            await until(pilot, lambda: app.snapshot.connected and app.snapshot.up == 2)
            assert len(app.query_one(EngineTable).rows) >= 2
    finally:
        c.stop_cluster_sync()
