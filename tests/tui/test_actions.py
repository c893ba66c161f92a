"""Actions from the keyboard against a real cluster: add, stop, read-only, stop and come back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import par
import pytest
from par_tui.confirm import Confirm
from par_tui.engine_table import EngineTable
from textual import events

from ..conftest import by_hand
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


async def test_add_engine_key_on_a_cluster_started_by_hand() -> None:
    """`par controller` and `par engine` run as commands of their own: the monitor adds
    engines through the local launcher all the same."""
    with by_hand("tui-by-hand", 1):
        app = live_app("tui-by-hand")
        async with app.run_test(size=SIZE) as pilot:
            table = app.query_one(EngineTable)
            await until(pilot, lambda: app.snapshot.up == 1)
            await pilot.press("a")
            await until(pilot, lambda: app.snapshot.up == 2)
            new = next(r for r in app.snapshot.engines if r.id == 1)
            assert new.launcher == "local"
            assert len(table.rows) == 2
            want = "controller by hand, engines local (1 set)"
            await until(pilot, lambda: app.snapshot.launchers == want)


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


async def test_the_question_names_the_engine_under_the_cursor_when_k_was_pressed(
    small: par.Cluster,
) -> None:
    app = live_app(small.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(EngineTable)
        await until(pilot, lambda: app.snapshot.up >= 2 and len(table.rows) >= 2)
        await pilot.press("home")
        # Keys typed fast arrive together, before the table has said where its cursor went.
        for key in ("down", "k"):
            app.post_message(events.Key(key, None))
        await until(pilot, lambda: isinstance(app.screen, Confirm))
        assert app.screen.question == f"stop engine {table.rows[1]}?"
        await pilot.press("n")


def _noop(x: int) -> int:
    return x


async def test_abort_says_how_many_tasks_of_which_clients_then_aborts_them(
    small: par.Cluster,
) -> None:
    first, second = small.connect_client_sync(), small.connect_client_sync()
    app = live_app(small.cluster_id)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.snapshot.up >= 1)
            ids = first.ids
            running = [first[i].apply_async(time.sleep, 10) for i in ids]
            await until(pilot, lambda: app.snapshot.busy == len(ids))
            mine = first.load_balanced_view().map_async(_noop, range(30))
            theirs = second.load_balanced_view().map_async(_noop, range(12))
            await until(pilot, lambda: app.snapshot.running + app.snapshot.queued >= 42)
            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, Confirm))
            tag1, tag2 = mine.msg_ids[0][:4], theirs.msg_ids[0][:4]
            assert app.screen.question == (
                f"Abort 42 tasks not started yet: 30 of client {tag1}, 12 of client {tag2}? "
                "Tasks already running go on."
            )
            await pilot.press("y")
            for ar in (mine, theirs):
                with pytest.raises(par.RemoteError, match="TaskAborted"):
                    ar.get(timeout=30)
            assert [ar.get(timeout=30) for ar in running] == [None] * len(ids)
    finally:
        first.close()
        second.close()


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
            # The controller is gone before the stop has removed the cluster's files: a
            # cluster started with the same id before then would lose its own.
            stopping = [w for w in app.workers if w.group == "actions"]
            await until(pilot, lambda: all(w.is_finished for w in stopping))

            c = par.Cluster(n=2, cluster_id="tui-comeback")
            await asyncio.to_thread(lambda: c.start_and_connect_sync().close())
            await until(pilot, lambda: app.snapshot.connected and app.snapshot.up == 2)
            # The new run's engines only: the earlier run's engine 0 would share an id.
            await until(pilot, lambda: app.query_one(EngineTable).rows == [0, 1])
            assert all(r.alive for r in app.snapshot.engines)
    finally:
        c.stop_cluster_sync()
