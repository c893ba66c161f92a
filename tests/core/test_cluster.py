"""A real controller and 4 real engines, used as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import par
import pytest


def getpid() -> int:
    return os.getpid()


def test_four_engines_have_ids_0_to_3_and_distinct_pids(rc: par.Client) -> None:
    assert rc.ids == [0, 1, 2, 3]
    pids = rc[:].apply_sync(getpid)
    assert len(set(pids)) == 4
    assert os.getpid() not in pids


def test_single_engine_view_returns_a_scalar(rc: par.Client) -> None:
    assert rc[2].apply_sync(lambda x, y=0: x + y, 40, y=2) == 42
    assert rc[-1].apply_sync(lambda: 7) == 7
    last = rc[-1]
    assert last.targets == rc.ids[-1]  # the engine's real id, as in ipyparallel
    assert last.apply_async(lambda: 8).get_dict(timeout=30) == {last.targets: 8}


def test_push_pull_round_trips_python_objects(rc: par.Client) -> None:
    dv = rc[:]
    value = {"a": [1, 2.5, "three"], "b": (None, True), "c": {4, 5}}
    dv.push({"value": value}, block=True)
    assert dv.pull("value", block=True) == [value] * 4
    dv["n"] = 5
    assert dv["n"] == [5, 5, 5, 5]
    assert rc[1].pull(["n", "value"], block=True) == [5, value]


def test_push_pull_round_trips_a_10mb_array(rc: par.Client) -> None:
    arr = np.random.default_rng(0).random(10 * 1024 * 1024 // 8)
    dv = rc[:]
    dv.push({"arr": arr}, block=True)
    sums = dv.apply_sync(lambda: float(arr.sum()))
    assert sums == pytest.approx([float(arr.sum())] * 4)
    back = rc[3].pull("arr", block=True)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, arr)


def test_large_bytes_travel_out_of_band_and_intact(rc: par.Client) -> None:
    blob = os.urandom(3 << 20)
    assert rc[0].apply_sync(lambda b: b[::-1], blob) == blob[::-1]


def test_scatter_and_gather_round_trip(rc: par.Client) -> None:
    dv = rc[:]
    dv.scatter("part", list(range(10)), block=True)
    assert dv.apply_sync(lambda: len(part)) == [3, 3, 2, 2]  # noqa: F821
    assert dv.gather("part", block=True) == list(range(10))
    arr = np.arange(12.0)
    dv.scatter("chunk", arr, block=True)
    np.testing.assert_array_equal(dv.gather("chunk", block=True), arr)
    later = dv.gather("chunk", block=False)  # a map-like result, as in ipyparallel
    assert isinstance(later, par.AsyncMapResult) and len(later) == 4
    np.testing.assert_array_equal(later.get(timeout=30), arr)
    assert later.progress == 4 and list(later) == list(arr)


def test_scatter_flatten_and_round_robin(rc: par.Client) -> None:
    dv = rc[:]
    dv.scatter("one", [10, 11, 12, 13], flatten=True, block=True)
    assert dv.pull("one", block=True) == [10, 11, 12, 13]
    dv.scatter("rr", list(range(8)), dist="r", block=True)
    assert dv.pull("rr", block=True) == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert dv.gather("rr", dist="r", block=True) == list(range(8))


def test_execute_defines_names_that_functions_see(rc: par.Client) -> None:
    dv = rc[:]
    dv.execute("import math\ncounter = 10", block=True)
    assert dv.apply_sync(lambda: math.floor(counter / 3)) == [3] * 4  # noqa: F821


def test_interactive_functions_assign_globals_on_the_engine(rc: par.Client) -> None:
    def setter() -> None:
        global from_function
        from_function = "set remotely"

    rc[0].apply_sync(setter)
    assert rc[0]["from_function"] == "set remotely"


def test_captured_client_globals_are_seen_fresh_each_call(rc: par.Client) -> None:
    global client_side
    client_side = 1
    assert rc[0].apply_sync(lambda: client_side) == 1
    client_side = 2
    assert rc[0].apply_sync(lambda: client_side) == 2


def test_engine_values_win_over_client_globals_of_the_same_name(rc: par.Client) -> None:
    global shared_name
    shared_name = "client"
    rc[:].push({"shared_name": "engine"}, block=True)
    assert rc[:].apply_sync(lambda: shared_name) == ["engine"] * 4


def test_direct_map_splits_across_engines(rc: par.Client) -> None:
    assert rc[:].map_sync(lambda x, y: x * y, range(10), range(10)) == [i * i for i in range(10)]


def test_load_balanced_map_of_1000_items_returns_results_in_order(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    assert lv.map_sync(lambda x: x * x, range(1000)) == [i * i for i in range(1000)]


def test_load_balanced_map_chunksize_and_unordered(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ar = lv.map_async(lambda x: x + 1, range(100), chunksize=7)
    assert len(ar.msg_ids) == 15
    assert ar.get(timeout=30) == list(range(1, 101))
    ar = lv.map_async(lambda x: (time.sleep(0.01 * (x % 3)), x)[1], range(20), ordered=False)
    assert sorted(ar) == list(range(20))


def test_map_result_iterates_as_results_arrive(rc: par.Client) -> None:
    ar = rc.load_balanced_view().map_async(lambda x: x * 2, range(8))
    assert list(ar) == [x * 2 for x in range(8)]
    assert len(ar) == 8


def test_load_balanced_tasks_spread_over_engines(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ars = [lv.apply_async(lambda: (time.sleep(0.2), os.getpid())[1]) for _ in range(8)]
    assert len({ar.get(timeout=30) for ar in ars}) >= 3
    assert {ar.metadata["engine_id"] for ar in ars} <= set(rc.ids)


def test_remote_exception_arrives_as_remote_error_with_traceback(rc: par.Client) -> None:
    def fails(x: int) -> float:
        return x / 0

    with pytest.raises(par.RemoteError) as info:
        rc[1].apply_sync(fails, 5)
    err = info.value
    assert err.ename == "ZeroDivisionError"
    assert err.evalue == "division by zero"
    assert "in fails" in err.traceback
    assert "return x / 0" in err.traceback
    assert "par/engine" not in err.traceback
    assert err.engine_id == 1


def test_errors_from_several_engines_arrive_as_composite_error(rc: par.Client) -> None:
    with pytest.raises(par.CompositeError) as info:
        rc[:].apply_sync(lambda: int("x"))
    assert len(info.value.elist) == 4
    assert {e.ename for e in info.value.elist} == {"ValueError"}
    results = rc[:].apply_async(lambda: 1 / 0).get(return_exceptions=True)
    assert all(isinstance(r, par.RemoteError) for r in results)


def test_exception_whose_str_raises_is_still_reported(rc: par.Client) -> None:
    def raise_bad() -> None:
        class Bad(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no str for you")

        raise Bad()

    with pytest.raises(par.RemoteError) as info:
        rc[0].apply_sync(raise_bad)
    assert info.value.ename == "Bad"
    assert "unprintable" in info.value.evalue


def test_unpicklable_result_gives_a_clear_error_and_engine_survives(rc: par.Client) -> None:
    with pytest.raises(par.RemoteError) as info:
        rc[0].apply_sync(lambda: __import__("threading").Lock())
    assert "cannot pickle" in info.value.evalue
    assert rc[0].apply_sync(lambda: "still here") == "still here"


def test_unpicklable_argument_fails_on_the_client_before_sending(rc: par.Client) -> None:
    import threading

    with pytest.raises(Exception, match="cannot pickle"):
        rc[0].apply_async(lambda lock: None, threading.Lock())


def test_print_inside_a_task_shows_up_in_stdout(rc: par.Client) -> None:
    def chatty(n: int) -> int:
        import sys

        print("hello from", n)
        print("to stderr", file=sys.stderr)
        return n

    ar = rc[2].apply_async(chatty, 3)
    assert ar.get(timeout=30) == 3
    assert ar.stdout == "hello from 3\n"
    assert ar.stderr == "to stderr\n"
    multi = rc[:].apply_async(chatty, 1)
    multi.get(timeout=30)
    assert multi.stdout == ["hello from 1\n"] * 4


def test_output_of_a_long_task_streams_and_is_complete_at_the_end(rc: par.Client) -> None:
    def slow_printer() -> None:
        for i in range(5):
            print("line", i, flush=True)
            time.sleep(0.1)

    ar = rc[0].apply_async(slow_printer)
    deadline = time.monotonic() + 10
    while not ar.stdout and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ar.stdout.startswith("line 0")  # arrived while the task was still running
    ar.get(timeout=30)
    assert ar.stdout == "".join(f"line {i}\n" for i in range(5))


def test_output_is_capped_with_a_notice(rc: par.Client) -> None:
    ar = rc[0].apply_async(lambda: print("x" * (3 << 20)))
    ar.get(timeout=60)
    assert len(ar.stdout) < (2 << 20)
    assert "truncated" in ar.stdout


def test_async_result_is_a_future_with_metadata(rc: par.Client) -> None:
    from concurrent.futures import Future, as_completed

    ar = rc[1].apply_async(lambda: (time.sleep(0.05), "done")[1])
    assert isinstance(ar, Future)
    assert [f.result() for f in as_completed([ar], timeout=30)] == ["done"]
    assert ar.ready() and ar.successful()
    md = ar.metadata
    assert md["engine_id"] == 1 and md.engine_id == 1
    assert md["submitted"] <= md["started"] <= md["completed"] <= md["received"]
    assert md["status"] == "ok"
    assert ar.engine_id == 1
    assert ar.wall_time >= ar.serial_time >= 0.05


def test_get_with_timeout_raises_timeout_error(rc: par.Client) -> None:
    ar = rc[3].apply_async(time.sleep, 1.0)
    with pytest.raises(par.TimeoutError):
        ar.get(timeout=0.05)
    assert not ar.ready()
    assert ar.wait(30)
    assert ar.get() is None


def test_await_an_async_result(rc: par.Client) -> None:
    import asyncio

    async def main() -> int:
        return await rc[0].apply_async(lambda: 41 + 1)

    assert asyncio.run(main()) == 42


def test_block_flag_makes_apply_wait(rc: par.Client) -> None:
    dv = rc.direct_view([0, 1])
    assert isinstance(dv.apply(lambda: 1), par.AsyncResult)
    dv.block = True
    assert dv.apply(lambda: 1) == [1, 1]
    with dv.temp_flags(block=False):
        assert isinstance(dv.apply(lambda: 1), par.AsyncResult)


def test_queue_status_counts_work(rc: par.Client) -> None:
    rc[:].apply_sync(lambda: None)
    status = rc.queue_status()
    assert set(status) == {0, 1, 2, 3, "unassigned"}
    assert all(status[i]["completed"] > 0 for i in rc.ids)


def test_bad_targets_give_clear_errors(rc: par.Client) -> None:
    with pytest.raises(IndexError, match="no such engine: 17"):
        rc[17]
    with pytest.raises(TypeError, match="callable"):
        rc[0].apply_sync(42)
    with pytest.raises(KeyError, match="invalid flag"):
        rc[:].set_flags(colour="red")


def test_status_reports_engines_with_their_own_cpu_memory_and_running_task(rc: par.Client) -> None:
    ar = rc[2].apply_async(time.sleep, 2.5)
    deadline = time.monotonic() + 10
    stats: dict = {}
    while time.monotonic() < deadline:
        engines = {e["id"]: e for e in rc.status(timeout=5)["engines"]}
        stats = engines[2]["stats"]
        if stats.get("task") == ar.msg_ids[0]:
            break
        time.sleep(0.2)
    assert stats["task"] == ar.msg_ids[0]
    assert stats["task_started"] <= time.time()
    assert stats["rss"] > 10 << 20
    assert 0 <= stats["cpu"] <= 200
    ar.get(timeout=30)


def test_an_empty_target_list_is_refused_instead_of_waiting_forever(rc: par.Client) -> None:
    with pytest.raises(par.NoEnginesRegistered, match="empty list of targets"):
        rc[[]].apply_sync(lambda: 1)
    with pytest.raises(par.NoEnginesRegistered, match="selects none"):
        rc[10:]


def test_metadata_of_a_map_larger_than_the_clients_metadata_bound(rc: par.Client) -> None:
    n = rc.metadata.limit + 2000  # the client forgets the oldest; the result must not
    ar = rc.load_balanced_view().map_async(abs, range(n))
    assert ar.get(timeout=120) == list(range(n))
    assert all(md["received"] is not None and md["engine_id"] in rc.ids for md in ar.metadata)
    assert len(rc.metadata) <= rc.metadata.limit


EXIT_SCRIPT = """
import pathlib, sys
import par

def touch(i, folder):
    pathlib.Path(folder, str(i)).touch()

rc = par.Client(cluster_id=sys.argv[1])
lv = rc.load_balanced_view()
lv.map_sync(touch, range(50), [sys.argv[2]] * 50)  # replies coming in: requests may be held
for i in range(50, 400):
    lv.apply_async(touch, i, sys.argv[2])
# exits without waiting or closing the client
"""


def test_a_script_that_submits_tasks_and_exits_loses_none(
    cluster: par.Cluster, rc: par.Client, tmp_path: Path
) -> None:
    script = tmp_path / "fire_and_forget.py"
    script.write_text(EXIT_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run([sys.executable, str(script), cluster.cluster_id, str(out)], timeout=60)
    assert done.returncode == 0
    deadline = time.monotonic() + 30
    while len(list(out.iterdir())) < 400 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(int(p.name) for p in out.iterdir()) == list(range(400))
