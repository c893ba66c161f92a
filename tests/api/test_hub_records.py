"""The hub's task records as ipyparallel users reach for them: db_query with TaskRecord
keys, resubmit, purging results here and on the controller, and what each view sent."""

from __future__ import annotations

import gc
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import par
import pytest
from par import serialize
from par.client.history import LiveResults
from par.errors import ParError

from ..conftest import wait_for_file


def talk_slowly() -> str:
    import time

    print("before", flush=True)
    time.sleep(0.5)  # long enough for the engine to stream the first line
    print("after")
    return "talked"


def count_runs(path: str) -> int:
    with open(path, "a") as f:
        f.write("x")
    with open(path) as f:
        return len(f.read())


def pid_and(x: int) -> tuple[int, int]:
    import os

    return os.getpid(), x


# ---- db_query ------------------------------------------------------------------------------------


def test_db_query_offers_ipyparallel_task_record_keys(rc: par.Client) -> None:
    t0 = datetime.now(UTC) - timedelta(seconds=1)
    lv = rc.load_balanced_view(label="records")
    ok = lv.apply_async(lambda x: x * 2, 21)
    bad = lv.apply_async(lambda: 1 / 0)
    said = rc[1].apply_async(talk_slowly)
    ran = rc[2].execute("y = 1", block=False)
    rc.wait([ok, bad, said, ran], timeout=30)
    ids = {
        name: ar.msg_ids[0] for name, ar in [("ok", ok), ("bad", bad), ("said", said), ("ran", ran)]
    }
    records = {r["msg_id"]: r for r in rc.db_query({"msg_id": {"$in": list(ids.values())}})}
    assert set(records) == set(ids.values())
    ipp_keys = {
        "msg_id", "header", "content", "submitted", "client_uuid", "engine_uuid", "started",
        "completed", "resubmitted", "result_header", "result_content", "queue", "execute_input",
        "execute_result", "error", "stdout", "stderr", "label",
    }  # fmt: skip
    for rec in records.values():
        assert ipp_keys <= set(rec)
        assert "buffers" not in rec and "result_buffers" not in rec  # only when asked, as there
        assert rec["submitted"] >= t0 and rec["started"] <= rec["completed"]
        assert rec["engine_uuid"] == rc.engines()[rec["engine_id"]]["uuid"]
        assert rec["client_uuid"] == records[ids["ok"]]["client_uuid"]
        assert rec["header"]["msg_id"] == rec["msg_id"]
        assert rec["resubmitted"] is None and rec["execute_result"] is None

    good = records[ids["ok"]]
    assert good["queue"] == "task" and good["label"] == "records"
    assert good["header"]["msg_type"] == "apply_request" and good["content"] == {}
    assert good["result_header"]["msg_type"] == "apply_reply"
    assert good["result_content"] == {"status": "ok"} and good["error"] is None

    failed = records[ids["bad"]]
    assert failed["error"]["ename"] == "ZeroDivisionError"
    assert "1 / 0" in failed["error"]["traceback"]
    assert failed["result_content"]["status"] == "error"

    direct = records[ids["said"]]
    assert direct["queue"] == "mux" and direct["engine_id"] == 1
    assert direct["stdout"] == "before\nafter\n"  # the streamed line and the rest

    code = records[ids["ran"]]
    assert code["execute_input"] == "y = 1" and code["content"] == {"code": "y = 1"}
    assert code["header"]["msg_type"] == "execute_request"


def test_db_query_returns_request_and_result_frames_when_asked(rc: par.Client) -> None:
    data = np.arange(100_000, dtype=np.float64)  # large enough to travel as its own frame
    ar = rc.load_balanced_view().apply_async(np.sum, data)
    assert ar.get(timeout=30) == data.sum()
    (rec,) = rc.db_query({"msg_id": ar.msg_ids[0]}, keys=["buffers", "result_buffers"])
    assert set(rec) == {"msg_id", "buffers", "result_buffers"}
    fdata, adata, *arrays = rec["buffers"]
    args, kwargs = serialize.loads(adata, arrays)
    assert serialize.loads(fdata) is np.sum and np.array_equal(args[0], data) and kwargs == {}
    assert serialize.loads(rec["result_buffers"][0], rec["result_buffers"][1:]) == data.sum()
    (only,) = rc.db_query({"msg_id": ar.msg_ids[0]}, keys="status")
    assert only == {"msg_id": ar.msg_ids[0], "status": "ok"}


def test_db_query_compares_times_exactly_as_it_returns_them(rc: par.Client) -> None:
    for _ in range(3):
        rc[:].apply_sync(lambda: 1)
    records = rc.db_query({"queue": "mux"}, keys=["submitted"])
    for tic in sorted({r["submitted"] for r in records})[:: max(len(records) // 10, 1)]:
        before = rc.db_query({"submitted": {"$lt": tic}}, keys=["submitted"])
        after = rc.db_query({"submitted": {"$gte": tic}}, keys=["submitted"])
        same = rc.db_query({"submitted": tic}, keys=["submitted"])
        assert all(r["submitted"] < tic for r in before)
        assert all(r["submitted"] >= tic for r in after)
        assert same and all(r["submitted"] == tic for r in same)
        assert len(before) + len(after) == len(rc.hub_history())


def test_db_query_compares_times_as_datetimes_and_refuses_unknown_keys(rc: par.Client) -> None:
    before = datetime.now(UTC)
    ar = rc[0].apply_async(lambda: 1)
    ar.get(timeout=30)
    found = rc.db_query({"submitted": {"$gte": before}, "queue": "mux"}, keys=["submitted"])
    assert ar.msg_ids[0] in {r["msg_id"] for r in found}
    assert all(r["submitted"] >= before for r in found)
    assert not rc.db_query({"msg_id": ar.msg_ids[0], "completed": {"$lt": before}})
    with pytest.raises(ParError, match="unknown record key 'colour'"):
        rc.db_query({"colour": "red"})
    with pytest.raises(ParError, match="unknown record key 'size'"):
        rc.db_query({}, keys=["size"])
    with pytest.raises(TypeError, match="dict query"):
        rc.db_query("msg_id")  # type: ignore[arg-type]


# ---- resubmit ------------------------------------------------------------------------------------


def test_resubmit_runs_tasks_again_under_new_message_ids(rc: par.Client, tmp_path: Path) -> None:
    counter = str(tmp_path / "runs")
    lv = rc.load_balanced_view()
    first = lv.apply_async(count_runs, counter)
    assert first.get(timeout=30) == 1
    again = rc.resubmit(first.msg_ids[0])
    assert isinstance(again, par.AsyncHubResult)
    assert again.msg_ids != first.msg_ids
    assert again.get(timeout=30) == 2  # it ran again
    (original,) = rc.db_query({"msg_id": first.msg_ids[0]}, keys=["resubmitted"])
    assert original["resubmitted"] == again.msg_ids[0]
    (new,) = rc.db_query({"msg_id": again.msg_ids[0]}, keys=["queue", "status", "header"])
    assert new["queue"] == "task" and new["status"] == "ok"
    assert rc.db_query({"resubmitted": again.msg_ids[0]}, keys=[])[0]["msg_id"] == first.msg_ids[0]
    assert rc.resubmit(again, block=True) == 3  # a resubmitted task resubmits too


def test_resubmit_sends_direct_tasks_to_their_engine_and_reruns_failures(rc: par.Client) -> None:
    ar = rc[3].apply_async(pid_and, 5)
    pid, _ = ar.get(timeout=30)
    again = rc.resubmit(ar.msg_ids)
    assert again.get(timeout=30) == (pid, 5)  # the same engine process
    (rec,) = rc.db_query({"msg_id": again.msg_ids[0]}, keys=["queue", "engine_id"])
    assert rec["queue"] == "mux" and rec["engine_id"] == 3
    bad = rc.load_balanced_view().apply_async(lambda: 1 / 0)
    bad.wait(30)
    with pytest.raises(par.RemoteError, match="ZeroDivisionError"):
        rc.resubmit(bad.msg_ids[0]).get(timeout=30)
    chunks = rc.load_balanced_view().map_async(lambda x: -x, range(4), chunksize=2)
    chunks.get(timeout=30)
    assert rc.resubmit(chunks).get(timeout=30) == [[0, -1], [-2, -3]]  # one value per task


def test_resubmit_of_an_unknown_task_is_a_remote_key_error_running_none(rc: par.Client) -> None:
    done = rc[0].apply_async(lambda: "done")
    done.get(timeout=30)
    before = set(rc.hub_history())
    with pytest.raises(par.RemoteError, match="no record of task nope") as raised:
        rc.resubmit([done.msg_ids[0], "nope"])
    assert raised.value.ename == "KeyError"  # as ipyparallel's hub raises it
    assert isinstance(raised.value, ParError)
    assert set(rc.hub_history()) == before  # nothing was resubmitted
    assert not rc.outstanding  # nor left waiting here


def test_resubmit_of_a_pending_task_runs_it_again(rc: par.Client, tmp_path: Path) -> None:
    counter = str(tmp_path / "runs")
    lv = rc.load_balanced_view()
    slow = lv.apply_async(lambda path: (time.sleep(0.5), count_runs(path))[1], counter)
    direct = rc[1].apply_async(time.sleep, 0.5)
    ids = [*slow.msg_ids, *direct.msg_ids]
    while set(rc.result_status(ids)["pending"]) != set(ids):  # the controller has both
        time.sleep(0.01)
    again = rc.resubmit(slow.msg_ids)  # still pending on the controller
    twice = rc.resubmit(direct.msg_ids)
    assert sorted([slow.get(timeout=30), again.get(timeout=30)]) == [1, 2]
    assert twice.get(timeout=30) is None and direct.get(timeout=30) is None


def test_resubmit_explains_a_dropped_request_and_a_gone_engine() -> None:
    with par.Cluster(n=2, controller_args=["--max-record-bytes", "400000"]) as rc:
        big = rc.load_balanced_view().apply_async(len, np.zeros(100_000))  # 800 kB of request
        assert big.get(timeout=30) == 100_000
        with pytest.raises(ParError, match=r"request of task [\w-]+ was not kept"):
            rc.resubmit(big.msg_ids[0])
        on_one = rc[1].apply_async(os.getpid)
        on_one.get(timeout=30)
        rc.cluster.stop_engine_sync(1)
        with pytest.raises(ParError, match=r"engine 1, which ran direct task [\w-]+, is gone"):
            rc.resubmit(on_one.msg_ids[0])


def test_request_bytes_count_toward_the_record_bound() -> None:
    bound = 2_000_000
    with par.Cluster(n=1, controller_args=["--max-record-bytes", str(bound)]) as rc:
        dv = rc[:]
        first = dv.apply_async(len, np.zeros(30_000))  # ~240 kB each
        first.get(timeout=30)
        ars = [dv.apply_async(len, np.zeros(30_000)) for _ in range(20)]
        rc.wait(ars, timeout=60)
        status = rc.status()
        assert 0 < status["record_bytes"] <= bound
        assert first.msg_ids[0] not in rc.hub_history()  # culled, oldest first
        assert ars[-1].msg_ids[0] in rc.hub_history()
        assert rc.resubmit(ars[-1], block=True) == 30_000


# ---- purging -------------------------------------------------------------------------------------


def test_purge_local_results_keeps_the_hubs_copy(rc: par.Client, tmp_path: Path) -> None:
    ar = rc[0].apply_async(lambda: "kept on the hub")
    ar.get(timeout=30)
    mid = ar.msg_ids[0]
    del ar  # its owner, which dropped it from rc.results: fetched again, not as the owner
    gc.collect()
    held = rc.get_result(mid, owner=False)
    assert held.get(timeout=30) == "kept on the hub" and rc.results[mid] == "kept on the hub"
    rc.purge_local_results(held)
    assert mid not in rc.results and mid not in rc.metadata
    assert rc.get_result(mid, block=True) == "kept on the hub"  # fetched again
    on_two = rc[2].apply_async(lambda: 2)
    on_three = rc[3].apply_async(lambda: 3)
    rc.wait([on_two, on_three], timeout=30)
    ids = [*on_two.msg_ids, *on_three.msg_ids]
    del on_two, on_three
    gc.collect()
    both = rc.get_result(ids, owner=False)
    assert both.get(timeout=30) == [2, 3]
    rc.purge_local_results(targets=[2])
    assert ids[0] not in rc.metadata and ids[1] in rc.metadata
    started = tmp_path / "started"
    busy = rc[1].apply_async(lambda: (started.touch(), time.sleep(30)))
    with pytest.raises(RuntimeError, match="cannot purge 1 outstanding"):
        rc.purge_local_results(busy)
    with pytest.raises(RuntimeError, match="outstanding"):
        rc.purge_local_results("all")
    with pytest.raises(ParError, match="still pending"):
        rc.purge_hub_results(busy)
    wait_for_file(started)  # a SIGINT interrupts a task that started
    rc.send_signal(signal.SIGINT, targets=[1])
    with pytest.raises(par.RemoteError):
        busy.get(timeout=30)
    with pytest.raises(ValueError, match="needs jobs"):
        rc.purge_local_results()
    with pytest.raises(ValueError, match="needs jobs"):
        rc.purge_hub_results([])


def test_results_take_values_set_by_hand_and_purge_them(rc: par.Client) -> None:
    rc.results["by-hand"] = 5
    assert rc.results["by-hand"] == 5 and "by-hand" in rc.results
    assert rc.metadata["by-hand"]["msg_id"] == "by-hand"
    rc.purge_local_results("by-hand")
    assert "by-hand" not in rc.results and "by-hand" not in rc.metadata
    rc.results["again"] = 6
    del rc.results["again"]
    assert "again" not in rc.results
    busy = rc[0].apply_async(time.sleep, 0.5)
    with pytest.raises(KeyError, match="outstanding"):
        rc.results[busy.msg_ids[0]] = 1
    busy.get(timeout=30)


def test_a_result_is_found_by_its_ids_while_it_lives_and_only_then(rc: par.Client) -> None:
    ar = rc.load_balanced_view().map_async(abs, range(-50, 0))
    assert ar.get(timeout=30) == list(range(50, 0, -1))
    ids = ar.msg_ids
    assert rc.get_result(ar) is ar and rc.get_result(ids) is ar
    one = rc.get_result(ids[7], owner=False)  # made from the live map's reply
    assert not isinstance(one, par.AsyncHubResult) and one.get(timeout=30) == [
        43
    ]  # a map task's chunk
    del ar, one
    gc.collect()
    again = rc.get_result(ids, owner=False)
    assert isinstance(again, par.AsyncHubResult)  # the map is gone: fetched from the controller
    assert again.get(timeout=30) == [[v] for v in range(50, 0, -1)]  # each task's chunk
    assert rc.get_result(ids[3]).get(timeout=30) == [47]  # held here now, from the fetched one


def test_live_results_forget_a_result_when_it_goes_not_a_later_one_by_the_same_ids() -> None:
    class Result:
        def __init__(self, msg_ids: list[str]) -> None:
            self.msg_ids = msg_ids

    known = LiveResults()
    first, later = Result(["a", "b", "c"]), Result(["b"])
    known.add(first)
    known.add(later)
    assert known.get("a") is first and known.get("b") is later and sorted(known) == ["a", "b", "c"]
    del first
    gc.collect()
    assert known.get("a") is None and "a" not in known and known.get("b") is later
    assert sorted(known) == ["b"] and len(known) == 1
    assert known.pop("b") is later and known.get("b") is None and len(known) == 0
    del later
    gc.collect()
    assert list(known) == []


def test_get_result_of_a_fetched_result_is_held_here(rc: par.Client) -> None:
    with par.Client(cluster_id=rc.connection_info.cluster_id) as other:
        sent = other[0].apply_async(lambda: "theirs")
        sent.get(timeout=30)
    fetched = rc.get_result(sent.msg_ids[0])
    assert isinstance(fetched, par.AsyncHubResult) and fetched.get(timeout=30) == "theirs"
    again = rc.get_result(sent.msg_ids[0])
    assert not isinstance(again, par.AsyncHubResult)  # held here now, as the client's own
    assert again.get(timeout=30) == "theirs"
    assert sent.msg_ids[0] not in rc.results  # the fetched result owned it: dropped
    mine = rc[:].apply_async(lambda: "mine")
    mine.get(timeout=30)
    assert rc.get_result(mine) is mine
    some = rc.get_result(mine.msg_ids[1:3], block=True)
    assert some == ["mine", "mine"]


def test_purge_hub_results_and_purge_results(rc: par.Client) -> None:
    ar = rc[0].apply_async(lambda: "gone")
    ar.get(timeout=30)
    assert rc.purge_hub_results(ar) == 1
    assert ar.msg_ids[0] not in rc.hub_history()
    assert ar.get() == "gone"  # the result keeps its value
    assert rc.db_query({"msg_id": ar.msg_ids[0]}) == []
    both = rc[1].apply_async(lambda: "both")
    both.get(timeout=30)
    assert rc.purge_results(both) == 1
    assert both.msg_ids[0] not in rc.results and both.msg_ids[0] not in rc.hub_history()
    rc[3].apply_sync(lambda: None)
    assert rc.purge_hub_results(targets=[3]) >= 1
    assert not rc.db_query({"engine_id": 3}, keys=[])


# ---- what a view sent ----------------------------------------------------------------------------


def test_views_keep_their_own_history_outstanding_and_results(rc: par.Client) -> None:
    lv = rc.load_balanced_view(targets=[1])
    dv = rc[0]
    held = dv.apply_async(time.sleep, 30)
    ar = lv.apply_async(lambda: "lb")
    assert lv.history == ar.msg_ids and dv.history == held.msg_ids
    assert lv.wait(timeout=30)  # waits for this view's tasks only: dv's is still running
    assert rc.wait(-1, timeout=30)  # the client's last message (an index into its history)
    assert not held.ready()
    assert lv.outstanding == set() and dv.outstanding == set(held.msg_ids)
    assert ar.get() == "lb" and dict(lv.results) == {}  # its owner dropped it once complete
    rc.results[ar.msg_ids[0]] = "by hand"
    assert lv.results[ar.msg_ids[0]] == "by hand" and ar.msg_ids[0] not in dv.results
    with pytest.raises(KeyError):
        lv.results[held.msg_ids[0]]
    assert dict(dv.results) == {}
    rc.send_signal(signal.SIGINT, targets=[0])
    with pytest.raises(par.RemoteError):
        held.get(timeout=30)
    assert dv.outstanding == set() and dict(dv.results) == {}

    double = lv.remote(block=False)(lambda x: 2 * x)
    sent = double(4)
    mapped = lv.map_async(abs, [-1, -2])
    assert lv.history[-3:] == [*sent.msg_ids, *mapped.msg_ids]
    lv.spin()
    rc.spin()
    assert lv.wait() and lv.outstanding == set()


def test_view_history_is_bounded(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ar = lv.map_async(abs, range(10_050))
    assert len(lv.history) == 10_000 and lv.history[-1] == ar.msg_ids[-1]
    assert ar.get(timeout=120)[-1] == 10_049


def test_spin_on_a_closed_client_says_so(cluster: par.Cluster) -> None:
    other = cluster.connect_client_sync()
    other.spin()
    other.close()
    with pytest.raises(ParError, match="closed"):
        other.spin()
