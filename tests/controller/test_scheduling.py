"""Load-balanced scheduling: targets, retries, rejection, dependencies, schemes; broadcast; hub."""

from __future__ import annotations

import gc
import os
import random
import signal
import time
from multiprocessing.pool import ThreadPool
from pathlib import Path

import par
import pytest
from par.client.hubresult import AsyncHubResult
from par.controller.engines import EngineRegistry, Pending
from par.controller.scheduler import TaskScheduler
from par.errors import ParError


def pid() -> int:
    return os.getpid()


# ---- targets, retries, rejection ----------------------------------------------------------


def test_a_load_balanced_view_can_be_restricted_to_targets(rc: par.Client) -> None:
    lv = rc.load_balanced_view(targets=[1, 2])
    assert len(lv) == 2
    ars = [lv.apply_async(lambda: time.sleep(0.02)) for _ in range(20)]
    assert {ar.get(timeout=30) or ar.metadata["engine_id"] for ar in ars} <= {1, 2}
    with pytest.raises(IndexError, match="no such engines"):
        rc.load_balanced_view(targets=[7])


def flaky(counter: str, needed: int) -> int:
    """Fail until this has been called ``needed`` times (counted in a file)."""
    with open(counter, "a+") as f:
        f.write("x")
        f.seek(0)
        calls = len(f.read())
    if calls < needed:
        raise ValueError(f"attempt {calls} fails")
    return calls


def test_retries_run_a_failed_task_again(rc: par.Client, tmp_path: Path) -> None:
    lv = rc.load_balanced_view()
    with lv.temp_flags(retries=2):
        assert lv.apply_sync(flaky, str(tmp_path / "a"), 3) == 3
    with lv.temp_flags(retries=1), pytest.raises(par.RemoteError, match="attempt 2 fails"):
        lv.apply_sync(flaky, str(tmp_path / "b"), 3)
    with pytest.raises(ValueError, match="retries must be"):
        lv.set_flags(retries=-1)


def fail_noting_where(log: str) -> None:
    """Fail, noting this engine's pid in a file."""
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    raise ValueError("failed here")


def test_retries_go_to_engines_the_task_has_not_failed_on(rc: par.Client, tmp_path: Path) -> None:
    lv = rc.load_balanced_view()
    n = len(rc.ids)
    for retries, log in ((n - 1, tmp_path / "once_each"), (n + 2, tmp_path / "no_more")):
        with lv.temp_flags(retries=retries), pytest.raises(par.RemoteError, match="failed here"):
            lv.apply_sync(fail_noting_where, str(log))
        pids = log.read_text().split()
        assert len(pids) == n and len(set(pids)) == n  # once on each engine, then its error
    timed = tmp_path / "timed"
    with lv.temp_flags(retries=n, timeout=0.5), pytest.raises(par.RemoteError) as info:
        lv.apply_sync(fail_noting_where, str(timed))  # waits for another engine, in vain
    assert info.value.ename == "TaskTimeout" and len(set(timed.read_text().split())) == n
    assert lv.apply_sync(pid) in rc[:].apply_sync(pid)  # the engines take new tasks as ever


def test_a_rejected_task_runs_on_another_engine(rc: par.Client) -> None:
    picky = rc[0].apply_sync(pid)

    def not_on(bad_pid: int) -> int:
        if os.getpid() == bad_pid:
            raise par.TaskRejectError("not here")
        return os.getpid()

    lv = rc.load_balanced_view(targets=[0, 1])
    results = [lv.apply_async(not_on, picky) for _ in range(6)]
    assert all(r.get(timeout=30) != picky for r in results)
    lv0 = rc.load_balanced_view(targets=[0])
    with pytest.raises(par.RemoteError) as info:
        lv0.apply_sync(not_on, picky)
    assert info.value.ename == "TaskRejectError"


def test_retries_survive_an_engine_that_dies() -> None:
    with par.Cluster(n=2) as rc:
        victim = rc[1].apply_sync(pid)
        lv = rc.load_balanced_view(retries=1)

        def work() -> int:
            time.sleep(1.0)
            return os.getpid()

        ars = [lv.apply_async(work) for _ in range(4)]
        time.sleep(0.4)
        os.kill(victim, signal.SIGKILL)
        done = [ar.get(timeout=60) for ar in ars]
        assert victim not in done


# ---- dependencies -----------------------------------------------------------------------------


def test_after_waits_for_its_dependencies(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    first = [lv.apply_async(time.sleep, 0.4) for _ in range(2)]
    with lv.temp_flags(after=first):
        later = lv.apply_async(time.time)
    started = later.get(timeout=30)
    assert started >= max(ar.metadata["completed"].timestamp() for ar in first) - 0.01


def test_follow_runs_where_its_dependency_ran(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    for _ in range(3):
        ar = lv.apply_async(pid)
        where = ar.get(timeout=30)
        with lv.temp_flags(follow=ar):
            assert lv.apply_sync(pid) == where


def test_a_failed_dependency_makes_a_task_impossible_unless_failure_counts(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    bad = lv.apply_async(lambda: 1 / 0)
    with lv.temp_flags(after=bad), pytest.raises(par.ImpossibleDependency):
        lv.apply_sync(lambda: "never")
    with lv.temp_flags(after=par.Dependency(bad, success=False, failure=True)):
        assert lv.apply_sync(lambda: "cleanup ran") == "cleanup ran"
    good = lv.apply_async(lambda: 1)
    with lv.temp_flags(after=par.Dependency([bad, good], all=False)):
        assert lv.apply_sync(lambda: "any is enough") == "any is enough"


def test_dependencies_that_take_too_long_time_out(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    slow = lv.apply_async(time.sleep, 3)
    with lv.temp_flags(after=slow, timeout=0.3), pytest.raises(par.TaskTimeout) as info:
        lv.apply_sync(lambda: "late")
    # ipyparallel's name for a task whose timeout passed before it could start; par's
    # DependencyTimeout still catches it.
    assert isinstance(info.value, par.DependencyTimeout) and info.value.ename == "TaskTimeout"
    slow.get(timeout=30)


def test_unknown_dependencies_are_invalid(rc: par.Client) -> None:
    lv = rc.load_balanced_view(after=["no-such-message"])
    with pytest.raises(par.InvalidDependency):
        lv.apply_sync(lambda: 0)


def test_a_task_waiting_on_dependencies_can_be_aborted(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    slow = lv.apply_async(time.sleep, 1)
    with lv.temp_flags(after=slow):
        waiting = lv.apply_async(lambda: "x")
    time.sleep(0.1)
    waiting.abort()
    with pytest.raises(par.TaskAborted):
        waiting.get(timeout=30)
    slow.get(timeout=30)


def test_a_dependency_says_whether_given_outcomes_meet_it() -> None:
    ok, failed = {"a", "b"}, {"c"}
    assert par.Dependency(["a", "b"]).check(ok, failed)
    assert not par.Dependency(["a", "c"]).check(ok, failed)
    assert par.Dependency(["a", "c"]).unreachable(ok, failed)
    assert par.Dependency(["a", "c"], all=False).check(ok, failed)
    assert par.Dependency(["c"], success=False, failure=True).check(ok, failed)
    assert par.Dependency(["a"], success=False, failure=True).unreachable(ok, failed)
    waiting = par.Dependency(["a", "later"])
    assert not waiting.check(ok, failed) and not waiting.unreachable(ok, failed)
    assert par.Dependency(["c", "later"], all=False).check(ok) is False
    assert par.Dependency([]).check(set()) and not par.Dependency([]).unreachable(set())


def test_dependency_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="success, failure, or both"):
        par.Dependency(["a"], success=False, failure=False)


# ---- schemes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["lru", "plainrandom", "weighted", "twobin", "pure"])
def test_every_scheme_runs_a_map(scheme: str) -> None:
    with par.Cluster(n=2, controller_args=["--scheme", scheme]) as rc:
        lv = rc.load_balanced_view()
        assert lv.map_sync(lambda x: x + 1, range(50)) == list(range(1, 51))
        assert len(set(lv.map_sync(lambda _: pid(), range(20)))) == 2  # both engines work
        if scheme == "pure":
            strict = rc.load_balanced_view(retries=1)
            with pytest.raises(par.RemoteError, match="'pure' scheme supports no retries"):
                strict.apply_sync(lambda: 0)


def test_twobin_takes_the_less_loaded_of_two_random_engines() -> None:
    engines = EngineRegistry()
    for load in (5, 2, 0):
        engine = engines.register(bytes([load]), load, "h", {})
        engine.state = "up"
        held = [Pending(f"{engine.id}-{j}", b"c", "t", "apply", 0.0) for j in range(load)]
        engine.outstanding = {p.msg_id: p for p in held}
    scheduler = TaskScheduler("twobin", hwm=0)
    chosen: set[int] = set()
    for i in range(40):
        scheduler.submit(Pending(f"t{i}", b"c", "t", "apply", 0.0))
        ((task, engine),) = scheduler.assign(engines)
        del engine.outstanding[task.msg_id]  # keep the loads as they were
        chosen.add(engine.id)
    assert 0 not in chosen  # the busiest engine always loses its comparison


@pytest.mark.parametrize("scheme", ["leastload", "lru"])
def test_an_ordered_scheme_picks_as_a_look_at_every_engine_would(scheme: str) -> None:
    """The heap of engines with room (see scheduler.py) picks what a scan would, while
    engines finish tasks, take direct requests it is not told of, and leave."""
    rng = random.Random(7)
    engines = EngineRegistry()
    for i in range(40):
        engines.register(bytes([i]), i, "h", {}).state = "up"
    scheduler = TaskScheduler(scheme)
    for engine in engines.up():
        scheduler.freed(engine)
    key = {"leastload": lambda e: (len(e.outstanding), e.last_assigned)}.get(
        scheme, lambda e: e.last_assigned
    )
    for i in range(2000):
        op = rng.random()
        busy = [e for e in engines.up() if e.outstanding]
        if op < 0.1:  # a direct request, of which the scheduler hears nothing
            engine = rng.choice(list(engines.up()))
            engine.outstanding[f"d{i}"] = Pending(f"d{i}", b"c", "d", "apply", 0.0)
        elif op < 0.4 and busy:  # a reply
            engine = rng.choice(busy)
            del engine.outstanding[rng.choice(list(engine.outstanding))]
            scheduler.freed(engine)
        elif op < 0.41:  # an engine leaves
            engine = rng.choice(list(engines.up()))
            engines.remove(engine)
            scheduler.forget(engine)
        else:
            free = [e for e in engines.up() if scheduler.has_room(e)]
            expected = [min(free, key=key)] if free else []
            scheduler.submit(Pending(f"t{i}", b"c", "t", "apply", 0.0))
            assert [engine for _, engine in scheduler.assign(engines)] == expected
            scheduler.queue.clear()  # a task no engine had room for


def test_many_queued_tasks_go_to_each_engine_in_runs() -> None:
    """A queue much longer than the engines with room: each engine takes its share in a
    row (one message), a few tasks still go one an engine, and every engine's room holds."""
    engines = EngineRegistry()
    for i in range(10):
        engines.register(bytes([i]), i, "h", {}).state = "up"
    scheduler = TaskScheduler("leastload", hwm=8)
    for engine in engines.up():
        scheduler.freed(engine)
    for i in range(50):
        scheduler.submit(Pending(f"t{i}", b"c", "t", "apply", 0.0))
    order = [engine.id for _, engine in scheduler.assign(engines)]
    assert order == [eid for eid in range(10) for _ in range(5)]  # runs of 5, in order
    for i in range(200):
        scheduler.submit(Pending(f"u{i}", b"c", "t", "apply", 0.0))
    assert len(scheduler.assign(engines)) == 30  # the room left: 3 an engine
    assert all(len(e.outstanding) == 8 for e in engines.up())
    for engine in engines.up():
        engine.outstanding.clear()
        scheduler.freed(engine)
    scheduler.queue.clear()
    for i in range(4):
        scheduler.submit(Pending(f"v{i}", b"c", "t", "apply", 0.0))
    assert len({engine.id for _, engine in scheduler.assign(engines)}) == 4


@pytest.mark.parametrize(
    ("task_time", "run"),
    [(None, 1), (0.05, 1), (0.002, 2), (0.00001, 5)],
)
def test_a_long_queue_of_tiny_tasks_goes_out_in_runs_though_every_engine_has_room(
    task_time: float | None, run: int
) -> None:
    """More queued tasks than a pass should send one a message (scheduler.RUN_SPREAD), on
    more engines than tasks: an engine whose tasks are tiny takes several in a row (up to
    what it runs in PREFETCH_SECONDS), one of unknown or long task time takes one."""
    engines = EngineRegistry()
    for i in range(4000):
        engine = engines.register(i.to_bytes(2, "big"), i, "h", {})
        engine.state = "up"
        engine.task_time = task_time
    scheduler = TaskScheduler("leastload")
    for engine in engines.up():
        scheduler.freed(engine)
    for i in range(1280):  # 5 a message to go out in RUN_SPREAD (256) messages
        scheduler.submit(Pending(f"t{i}", b"c", "t", "apply", 0.0))
    taken = [engine.id for _, engine in scheduler.assign(engines)]
    assert len(taken) == 1280
    assert taken == [eid for eid in range(1280 // run) for _ in range(run)]  # runs, in order
    for i in range(100):  # a short queue spreads one an engine, whatever the task time
        scheduler.submit(Pending(f"u{i}", b"c", "t", "apply", 0.0))
    assert len({engine.id for _, engine in scheduler.assign(engines)}) == 100


def noop(_: int) -> None:
    """A task that does nothing."""


def test_a_flood_of_tasks_reaches_engines_while_the_rest_is_read(rc: par.Client) -> None:
    """A map's messages that wait all at once are booked a slice a loop pass (what fills
    every engine's room, ``app.BOOK_PER_PASS`` at least), each followed by a dispatch:
    engines run the first tasks while the controller reads the rest. It booked 256 messages
    a pass (32,768 tasks here, a quarter of a second of its CPU) before the engines got
    any, so that a map of a million tiny tasks left both engines idle for its first 9 s."""

    def busy() -> int:  # tasks the engines hold or finished
        status = rc.queue_status()
        return sum(s["queue"] + s["completed"] for e, s in status.items() if e != "unassigned")

    before = busy()
    controller = int(rc.status()["pid"])
    with ThreadPool(1) as pool:
        os.kill(controller, signal.SIGSTOP)  # the map's messages all wait when it goes on
        try:
            ar = rc.load_balanced_view().map_async(noop, range(20_000))  # 157 of 128 tasks
            # A query after them on the same connection is read after them, a pass later.
            answer = pool.apply_async(busy)
        finally:
            os.kill(controller, signal.SIGCONT)
        assert answer.get(timeout=60) > before
    assert ar.get(timeout=60) == [None] * 20_000


def test_scheme_none_refuses_load_balanced_tasks_but_runs_direct_ones() -> None:
    with par.Cluster(n=1, controller_args=["--scheme", "none"]) as rc:
        assert rc[:].apply_sync(lambda: "direct") == ["direct"]
        lv = rc.load_balanced_view()
        with pytest.raises(par.RemoteError, match="--scheme none") as info:
            lv.apply_sync(lambda: 0)
        assert info.value.ename == "RuntimeError"
        with pytest.raises(par.CompositeError):
            lv.map_sync(abs, range(3))
        assert rc.queue_status()["unassigned"] == 0


# ---- broadcast ----------------------------------------------------------------------------------


@pytest.mark.parametrize("coalescing", [False, True])
def test_broadcast_view_reaches_every_engine(rc: par.Client, coalescing: bool) -> None:
    bv = rc.broadcast_view(is_coalescing=coalescing)
    pids = bv.apply_sync(pid)
    assert len(set(pids)) == 4
    bv.execute("broadcast_value = 7", block=True)
    assert bv.pull("broadcast_value", block=True) == [7] * 4
    with pytest.raises(par.CompositeError):
        bv.apply_sync(lambda: 1 / 0)
    assert "coalescing=" in repr(bv)


# ---- the hub's records ---------------------------------------------------------------


def test_another_client_fetches_results_by_message_id(cluster: par.Cluster, rc: par.Client) -> None:
    ar = rc.load_balanced_view().apply_async(lambda: {"answer": 42})
    ar.get(timeout=30)
    slow = rc[0].apply_async(lambda: (time.sleep(0.5), "slow")[1])
    with cluster.connect_client_sync() as other:
        assert other.get_result(ar.msg_ids[0], block=True) == {"answer": 42}
        assert other.get_result(slow.msg_ids[0], block=True) == "slow"
        status = other.result_status([*ar.msg_ids, "unknown-id"])
        assert status["completed"] == ar.msg_ids and status["unknown"] == ["unknown-id"]
        with pytest.raises(KeyError, match="no record"):
            other.get_result("unknown-id")
        fetched = other.get_result(ar.msg_ids[0], owner=False)
        assert isinstance(fetched, AsyncHubResult) and fetched.get(30) == {"answer": 42}
        again = other.get_result(ar.msg_ids[0])  # held here now, as in ipyparallel
        assert not isinstance(again, AsyncHubResult) and again.get(30) == {"answer": 42}
        later = other.get_result(slow.msg_ids)
        both = other.get_result([*ar.msg_ids, *slow.msg_ids])  # from two results held here
        assert not isinstance(both, AsyncHubResult) and both.get(30) == [{"answer": 42}, "slow"]
        assert later.get(30) == "slow"
    assert rc.get_result(ar.msg_ids[0]) is ar


def test_hub_history_db_query_and_purge(rc: par.Client) -> None:
    lv = rc.load_balanced_view(label="sweep")
    ars = [lv.apply_async(lambda i=i: i) for i in range(5)]
    rc.wait(ars)
    ids = [a.msg_ids[0] for a in ars]
    assert set(ids) <= set(rc.hub_history())
    found = rc.db_query({"label": "sweep", "status": "ok"}, keys=["engine_id"])
    assert {r["msg_id"] for r in found} >= set(ids)
    assert all(set(r) == {"msg_id", "engine_id"} for r in found)
    recent = rc.db_query(
        {"msg_id": {"$in": ids}, "engine_id": {"$gte": 0}, "method": {"$glob": "app*"}}
    )
    assert len(recent) == 5
    with pytest.raises(ParError, match="unknown query operator"):
        rc.db_query({"label": {"$regex": "x"}})
    assert rc.purge_results(jobs=ars[:2]) == 2
    assert not set(ids[:2]) & set(rc.hub_history())
    with pytest.raises(ValueError, match="needs jobs"):
        rc.purge_results()


def test_a_completed_result_drops_its_messages_from_client_results(rc: par.Client) -> None:
    ar = rc[0].apply_async(time.sleep, 0.5)
    mid = ar.msg_ids[0]
    assert mid in rc.metadata and mid not in rc.results  # outstanding
    assert ar.get(timeout=30) is None and ar.get() is None
    # As in ipyparallel, the result that owns a message drops it from both once complete;
    # the result itself keeps its value and metadata, for as long as it lives.
    assert mid not in rc.metadata and mid not in rc.results
    assert ar.metadata["engine_id"] == 0 and ar.metadata["completed"] is not None
    both = rc[:2].apply_async(lambda: "both")
    assert both.get(timeout=30) == ["both", "both"]
    parts = both.split()  # parts made after it completed still share its metadata
    assert [p.metadata["engine_id"] for p in parts] == [0, 1] and not set(both.msg_ids) & set(
        rc.metadata
    )
    assert rc.wait([ar, both, mid], timeout=1) and mid in rc.history
    bad = rc[0].apply_async(lambda: 1 / 0)
    with pytest.raises(par.RemoteError):
        bad.get(timeout=30)
    assert bad.msg_ids[0] not in rc.results
    assert len(rc.metadata) <= rc.metadata.limit


def test_get_result_after_the_owner_dropped_it(rc: par.Client) -> None:
    ar = rc[1].apply_async(lambda: "kept")
    ar.get(timeout=30)
    mid = ar.msg_ids[0]
    assert mid not in rc.results
    assert rc.get_result(mid) is ar  # held here while it lives
    del ar
    gc.collect()
    fetched = rc.get_result(mid)  # then fetched from the controller
    assert isinstance(fetched, AsyncHubResult) and fetched.get(timeout=30) == "kept"
    assert fetched.metadata["engine_id"] == 1
    assert mid not in rc.results and mid not in rc.metadata  # it owned them too
    del fetched
    gc.collect()
    kept = rc.get_result(mid, owner=False)  # not the owner: they stay while it lives
    assert kept.get(timeout=30) == "kept" and rc.results[mid] == "kept" and mid in rc.metadata
    rc.purge_local_results(mid)
    assert mid not in rc.results
