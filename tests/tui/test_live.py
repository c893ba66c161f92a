"""The monitor against a real cluster: what a user sees while work runs."""

from __future__ import annotations

import time

import par
import pytest
from par_tui.engine_table import EngineRows, EngineTable
from par_tui.error_detail import ErrorDetail
from par_tui.errors import ErrorList
from par_tui.header import ClusterHeader
from par_tui.output import EngineOutput
from par_tui.task_stream import Lanes

from .conftest import SIZE, live_app, until

pytestmark = pytest.mark.asyncio


def _header(app) -> str:
    return str(app.query_one(ClusterHeader).render())


async def test_engine_table_shows_the_clusters_engines(
    cluster: par.Cluster, rc: par.Client
) -> None:
    app = live_app(cluster.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(EngineTable)
        await until(pilot, lambda: len(table.rows) == 4)
        assert sorted(table.rows) == rc.ids
        pids = {e["id"]: e["pid"] for e in rc.status()["engines"]}
        for r in app.snapshot.engines:
            assert r.pid == pids[r.id]
            assert r.state == "up"
            assert r.launcher == "local"
        await until(pilot, lambda: all(r.rss for r in app.snapshot.engines))
        assert "4 up" in _header(app)
        assert cluster.cluster_id in _header(app)


async def test_a_load_of_tasks_moves_the_counters(cluster: par.Cluster, rc: par.Client) -> None:
    app = live_app(cluster.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot.up == 4)
        before = app.snapshot.done

        def work(x: int) -> int:
            time.sleep(0.01)
            print(f"item {x}")
            return x

        ar = rc.load_balanced_view().map_async(work, range(100))
        await until(pilot, lambda: app.snapshot.running + app.snapshot.queued > 0 or ar.ready())
        assert ar.get(timeout=60) == list(range(100))
        await until(pilot, lambda: app.snapshot.done >= before + 100)
        assert f"{app.snapshot.done} done" in _header(app)
        assert sum(r.completed for r in app.snapshot.engines) >= 100
        # The feed's sums reach the monitor within a second, and whole seconds count.
        await until(pilot, lambda: sum(app.snapshot.throughput) >= 100)

        # The output tab shows what the selected engine's tasks printed.
        await pilot.press("3")
        await until(pilot, lambda: app.snapshot.output_engine is not None)
        await until(pilot, lambda: len(app.query_one(EngineOutput).lines) > 0)
        assert len(app.query_one(EngineTable).rows) == 4
        assert all(line.text.startswith("item ") for line in app.snapshot.output)


async def test_a_failing_task_shows_in_errors_with_its_traceback(
    cluster: par.Cluster, rc: par.Client
) -> None:
    app = live_app(cluster.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot.up == 4)

        def explode() -> float:
            return 1 / 0

        ar = rc[0].apply_async(explode)
        with pytest.raises(par.RemoteError):
            ar.get(timeout=30)
        errors = app.query_one(ErrorList)
        await until(pilot, lambda: any(r.ename == "ZeroDivisionError" for r in errors.records))
        record = errors.records[0]
        assert record.engine == 0
        assert record.id == ar.msg_ids[0]
        assert "division by zero" in record.evalue

        await pilot.press("2")
        assert app.query_one("TabbedContent").active == "errors"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ErrorDetail))
        shown = str(app.screen.query_one("#traceback").render())
        assert "Traceback" in shown
        assert "ZeroDivisionError" in shown
        assert "explode" in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorDetail)


def _lanes(app) -> list[object]:
    return [lane.key for lane in app.query_one(Lanes).lanes]


async def test_filter_and_sort_and_the_lanes_follow(cluster: par.Cluster, rc: par.Client) -> None:
    app = live_app(cluster.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(EngineTable)
        await until(pilot, lambda: len(table.rows) == 4)
        pid = str(next(r.pid for r in app.snapshot.engines if r.id == 2))
        await pilot.press("slash", *pid)
        await until(pilot, lambda: table.rows == [2])
        await until(pilot, lambda: _lanes(app) == ["all", 2])
        await pilot.press("escape")
        await until(pilot, lambda: len(table.rows) == 4)
        await pilot.click("#engine-rows", offset=(2, 0))  # the id column's header
        await until(pilot, lambda: table.rows == [3, 2, 1, 0])
        assert _lanes(app) == ["all", 3, 2, 1, 0]
        titles = app.query_one(EngineRows).titles
        assert [title for title, _ in titles][:2] == ["id▼", "host"]
        await pilot.press("g")  # one lane per host
        await until(pilot, lambda: len(_lanes(app)) == 2)
        assert app.query_one(Lanes).lanes[1].label.endswith("(4)")


async def test_an_engine_running_a_task_is_busy(cluster: par.Cluster, rc: par.Client) -> None:
    app = live_app(cluster.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot.up == 4)
        ar = rc[1].apply_async(time.sleep, 3)

        def state() -> str:
            return next(r.state for r in app.snapshot.engines if r.id == 1)

        await until(pilot, lambda: state() == "busy")
        row = next(r for r in app.snapshot.engines if r.id == 1)
        assert row.task == ar.msg_ids[0]
        assert app.snapshot.busy == 1
        ar.get(timeout=30)
        await until(pilot, lambda: state() == "up")
