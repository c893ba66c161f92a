"""The monitor's counts against the controller's own, after a load of 20,000 tasks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import par
import pytest
from par_tui import format
from par_tui.engine_table import EngineTable
from par_tui.error_detail import ErrorDetail
from par_tui.errors import ErrorList
from par_tui.fixed_text import FixedText
from par_tui.task_stream import Lanes
from textual.widgets import DataTable

from .conftest import SIZE, live_app, until

pytestmark = pytest.mark.asyncio

TASKS = 20_000
FAILING = range(1999, TASKS, 2000)  # 10 known failures


def fail_some(x: int) -> int:
    """Fail for the inputs in FAILING."""
    if x % 2000 == 1999:
        raise ValueError(f"input {x} is bad")
    return x


@pytest.fixture(scope="module")
def fresh() -> Iterator[tuple[par.Cluster, par.Client]]:
    """A cluster of 4 engines that has run nothing yet."""
    c = par.Cluster(n=4)
    rc = c.start_and_connect_sync()
    rc.wait_for_engines(4, timeout=60)
    try:
        yield c, rc
    finally:
        rc.close()
        c.stop_cluster_sync()


def lane_counts(app) -> dict[object, tuple[int, int]]:
    """Done and failed of every lane the monitor shows, over its whole window."""
    return {lane.key: (v.done, v.failed) for lane, v in app.query_one(Lanes).views()}


async def test_after_a_big_map_every_count_agrees_with_the_controller(fresh) -> None:
    cluster, rc = fresh
    app = live_app(cluster.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot.up == 4)
        await pilot.press("2")  # watch the errors come in
        ar = rc.load_balanced_view().map_async(fail_some, range(TASKS))
        await until(pilot, ar.ready, timeout=300)
        truth = rc.status()
        assert truth["counts"]["failed"] == len(FAILING)
        assert truth["counts"]["completed"] == TASKS - len(FAILING)
        engines = {e["id"]: (e["completed"], e["failed"]) for e in truth["engines"]}

        await pilot.press("1")

        def agrees() -> bool:
            # The lanes read the live store, the rest a snapshot frozen at the last refresh:
            # the feed's last event may have reached the lanes and not yet the error list.
            snap = app.snapshot
            table = {r.id: (r.completed, r.failed) for r in snap.engines}
            lanes = lane_counts(app)
            return (
                table == engines
                and all(lanes[eid] == counts for eid, counts in engines.items())
                and lanes["all"] == (snap.done, snap.failed)
                and (snap.done, snap.failed) == (TASKS - len(FAILING), len(FAILING))
                and len(snap.errors) == len(FAILING)
            )

        await until(pilot, agrees)
        header = str(app.query_one("ClusterHeader").render())
        assert f"{TASKS - len(FAILING)} done" in header and f"{len(FAILING)} failed" in header
        assert len(app.query_one(EngineTable).rows) == 4

        # Each error names its own task: two failures on one engine show different ids.
        errors = app.snapshot.errors
        assert len(errors) == len(FAILING)
        assert str(tuple(e.evalue for e in errors)).count("is bad") == len(FAILING)
        engine, n = Counter(e.engine for e in errors).most_common(1)[0]
        assert n >= 2  # 10 errors on 4 engines
        assert len({format.short_id(e.id) for e in errors if e.engine == engine}) == n

        # The Errors tab opens on the newest error, even after the cursor was moved off it.
        newest = max(errors, key=lambda e: e.time)
        await pilot.press("2", "down", "down", "1", "2", "enter")
        await until(pilot, lambda: isinstance(app.screen, ErrorDetail))
        assert app.screen.record == newest
        assert app.query_one(ErrorList).records[0] == newest

        # As the Errors tab shows them: engine and task columns, a different task in each row.
        await pilot.press("escape")
        rows = app.query_one("#error-rows", DataTable)
        shown = [[str(cell) for cell in rows.get_row_at(i)[1:3]] for i in range(rows.row_count)]
        on_engine = [task for eid, task in shown if eid == str(engine)]
        assert len(shown) == len(FAILING) and len(set(on_engine)) == len(on_engine) == n


async def test_a_monitor_started_later_lists_every_error(fresh) -> None:
    cluster, rc = fresh
    before = rc.status()["counts"]["failed"]
    ar = rc.load_balanced_view().map_async(fail_some, range(4000))  # 2 more failures
    ar.wait(timeout=120)
    app = live_app(cluster.cluster_id)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot.failed == before + 2)
        await until(pilot, lambda: len(app.snapshot.errors) == before + 2)
        await pilot.press("2")
        assert app.query_one(ErrorList).records == list(app.snapshot.errors)
        count = app.query_one("#error-count", FixedText).text.plain
        assert count == f"{before + 2} failed tasks, newest first"
