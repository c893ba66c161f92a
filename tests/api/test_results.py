"""AsyncResult, AsyncMapResult and AsyncHubResult: the Results group of the surface."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION

import par
import pytest
import zmq
from par.client.hubresult import AsyncHubResult
from par.client.replies import Reply


def slow(x: float) -> float:
    import time

    time.sleep(x)
    return x


def fail_first(x: int) -> int:
    import time

    if x == 0:
        raise ValueError("first")
    time.sleep(1.5)
    return x


def talk(n: int) -> int:
    import sys
    import time

    for i in range(n):
        print(f"line {i}", flush=True)
        time.sleep(0.1)
    print("oops", file=sys.stderr)
    return n


def test_get_return_exceptions_and_return_when(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ar = lv.map_async(fail_first, range(3))
    start = time.monotonic()
    with pytest.raises(par.CompositeError) as info:
        ar.get(return_when=FIRST_EXCEPTION)
    assert time.monotonic() - start < 1.2, "FIRST_EXCEPTION raises before the others finish"
    assert info.value.elist[0].ename == "ValueError"
    values = ar.get(return_exceptions=True)
    assert isinstance(values[0], par.RemoteError) and values[1:] == [1, 2]
    with pytest.raises(ValueError, match="return_when"):
        ar.get(return_when=FIRST_COMPLETED)


def test_return_when_names_are_par_names_too(rc: par.Client) -> None:
    assert (par.ALL_COMPLETED, par.FIRST_COMPLETED, par.FIRST_EXCEPTION) == (
        ALL_COMPLETED,
        FIRST_COMPLETED,
        FIRST_EXCEPTION,
    )
    ar = rc.load_balanced_view().map_async(fail_first, range(2))
    done, pending = ar.wait(5, return_when=par.FIRST_EXCEPTION)
    assert len(done) == 1 and len(pending) == 1
    ar.wait(5)


def test_wait_return_when_splits(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ar = lv.map_async(slow, [0.0, 1.0])
    done, pending = ar.wait(5, return_when=FIRST_COMPLETED)
    assert len(done) == 1 and len(pending) == 1
    assert next(iter(done)).get() == [[0.0]]  # a part of a map: its chunk, as a list
    done, pending = ar.wait(5, return_when=ALL_COMPLETED)
    assert len(done) == 2 and not pending
    assert ar.wait() is True and ar.wait(0) is True
    with pytest.raises(ValueError, match="return_when"):
        ar.wait(1, return_when="SOON")


def test_split_and_join(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ars = [lv.apply_async(slow, 0.01 * i) for i in range(3)]
    joined = par.AsyncResult.join(*ars)
    assert joined.get(5) == [0.0, 0.01, 0.02]
    assert [p.get() for p in joined.split()] == [0.0, 0.01, 0.02]
    maps = par.AsyncResult.join(lv.map_async(abs, [-1, -2]), lv.map_async(abs, [-3]))
    assert isinstance(maps, par.AsyncMapResult) and maps.get() == [1, 2, 3]
    with pytest.raises(ValueError, match="at least one"):
        par.AsyncResult.join()
    with pytest.raises(ValueError, match="share"):
        par.AsyncResult.join(ars[0], ars[0])


def test_metadata_keys_timing_and_attribute_access(rc: par.Client) -> None:
    dv = rc[:]
    ar = dv.apply_async(slow, 0.1)
    ar.get()
    for key in [
        "msg_id",
        "submitted",
        "started",
        "completed",
        "received",
        "engine_uuid",
        "engine_id",
        "follow",
        "after",
        "status",
        "execute_input",
        "execute_result",
        "error",
        "stdout",
        "stderr",
        "outputs",
        "data",
        "label",
    ]:
        assert key in ar.metadata[0], key
    assert ar.engine_id == rc.ids and ar["status"] == ["ok"] * len(rc.ids)
    assert ar.serial_time >= 0.1 * len(rc.ids) * 0.9
    assert ar.wall_time >= 0.1 and ar.elapsed >= 0.1
    assert ar.timedelta(ar.submitted, ar.received) == pytest.approx(ar.wall_time)
    assert ar.timedelta(ar.started[0], ar.completed[0]) >= 0.09
    assert ar.progress == len(rc.ids) and ar.r == [0.1] * len(rc.ids)
    assert ar.get_dict() == dict.fromkeys(rc.ids, 0.1) == ar.result_dict
    with pytest.raises(AttributeError, match="no attribute"):
        ar.no_such_key  # noqa: B018
    pending = rc.load_balanced_view().apply_async(slow, 0.5)
    with pytest.raises(ValueError, match="not ready"):
        pending.successful()
    with pytest.raises(TimeoutError, match="wall_time is known once the result is ready"):
        pending.wall_time  # noqa: B018
    with pytest.raises(TimeoutError, match="serial_time"):
        pending.serial_time  # noqa: B018
    with pytest.raises(ValueError, match="times that are set"):
        pending.timedelta(pending.submitted, pending.received)
    pending.get()


def test_metadata_by_key_and_dir(rc: par.Client) -> None:
    ar = rc[0].apply_async(slow, 0.3)
    assert ar["completed"] is None
    with pytest.raises(KeyError, match="no_such_key"):
        ar["no_such_key"]
    ar.get()
    assert ar["engine_id"] == 0 and ar["completed"] == ar.completed
    with pytest.raises(KeyError):
        ar["no_such_key"]
    names = dir(ar)
    assert {"stdout", "engine_id", "completed", "get", "wait"} <= set(names)
    assert names == sorted(names)


def test_metadata_read_late_says_what_the_replies_said(rc: par.Client) -> None:
    """Records are made when first read: read after the replies came, they hold what each
    reply said, errors included; outstanding messages are listed in ``rc.metadata``."""
    lv = rc.load_balanced_view()
    pending = lv.apply_async(slow, 0.5)
    mid = pending.msg_ids[0]
    assert mid in rc.metadata and rc.metadata[mid]["status"] is None
    assert mid in list(rc.metadata) and len(rc.metadata) >= 1
    before = time.time()
    ars = [lv.apply_async(fail_first, i) for i in (0, 1)]
    rc.wait([pending, *ars], timeout=30)
    assert mid not in rc.metadata  # its owner completed
    assert pending.metadata["status"] == "ok" and pending.metadata["error"] is None
    failed, ok = (ar.metadata for ar in ars)
    assert failed["status"] == "error" and failed["error"].ename == "ValueError"
    assert ok["status"] == "ok" and ok["engine_id"] in rc.ids
    for md in (failed, ok):
        assert md["submitted"].timestamp() >= before - 1
        assert md["submitted"] <= md["started"] <= md["completed"] <= md["received"]
    direct = rc[1].apply_async(slow, 0)
    direct.get(timeout=30)
    assert direct.metadata["engine_id"] == 1


def test_metadata_read_while_replies_arrive_misses_none(rc: par.Client) -> None:
    """A thread reading a map's metadata while its replies come in: each record still
    gets its reply's fields, whichever made it first."""
    amr = rc.load_balanced_view().map_async(abs, range(3000))
    records = amr.metadata  # made at once, most replies still to come
    while not amr.done():
        assert amr.metadata is records
    assert amr.get(timeout=60) == list(range(3000))
    assert all(md["received"] is not None and md["status"] == "ok" for md in records)
    assert {md["engine_id"] for md in records} <= set(rc.ids)


def test_replies_delivered_together_reach_their_messages_records_and_watchers(
    rc: par.Client,
) -> None:
    """A run of replies handed to a result at once (a reply batch's) is taken in as each
    alone would be: out of order, with metadata made before some came, and passed on to
    a result made over one of its messages."""
    import pickle

    def reply(mid: str, value: int) -> Reply:
        return Reply(
            {"id": mid, "st": "ok", "e": 1, "ts": 1.0, "tc": 2.0}, [pickle.dumps(value)], []
        )

    ar = par.AsyncResult(rc, ["a", "b", "c"], "three", single=False)
    watcher = par.AsyncResult(rc, ["a"], "one")
    ar.forward("a", watcher)
    ar.deliver_all([("c", reply("c", 3))])
    records = ar.metadata  # made between two runs of replies
    ar.deliver_all([("b", reply("b", 2)), ("a", reply("a", 1))])
    assert ar.get(timeout=5) == [1, 2, 3] and watcher.get(timeout=5) == 1
    assert [md["engine_id"] for md in records] == [1, 1, 1]
    assert all(md["status"] == "ok" and md["completed"] is not None for md in records)


def test_split_of_one_message_and_of_a_map(rc: par.Client) -> None:
    one = rc[0].apply_async(abs, -1)
    assert one.split() == (one,)
    amr = rc.load_balanced_view().map_async(abs, [-1, -2, -3])
    parts = amr.split()
    assert [type(p) for p in parts] == [par.AsyncResult] * 3
    # each a list of its one message's value, the chunk [i], as in ipyparallel
    assert [p.get(timeout=30) for p in parts] == [[[1]], [[2]], [[3]]]


def test_await_and_futures(rc: par.Client) -> None:
    ar = rc.load_balanced_view().apply_async(slow, 0.05)

    async def main() -> float:
        return await ar

    assert asyncio.run(main()) == 0.05
    assert ar.result() == 0.05 and ar.done()


def test_outputs_stream_and_display(rc: par.Client, capsys: pytest.CaptureFixture[str]) -> None:
    ar = rc[0:2].apply_async(talk, 3)
    with ar.stream_output():
        ar.wait()
    out, err = capsys.readouterr()
    assert "[stdout:0] line 0" in out and "[stdout:1] line 2" in out
    assert "[stderr:0] oops" in err
    assert ar.wait_for_output(5) and ar.stdout[0] == "line 0\nline 1\nline 2\n"
    ar.display_outputs(groupby="engine")
    out, err = capsys.readouterr()
    assert out.index("[stdout:0]") < out.index("[stdout:1]") and "oops" in err
    ar.display_outputs(groupby="order", result_only=True)
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="groupby"):
        ar.display_outputs(groupby="colour")


def test_display_outputs_of_one_engine_has_no_engine_header(
    rc: par.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    ar = rc[0].apply_async(talk, 1)
    ar.get(timeout=30)
    ar.display_outputs()
    assert capsys.readouterr() == ("line 0\n", "oops\n")
    quiet = rc[0].execute("a = 5", block=True)
    quiet.display_outputs()
    assert capsys.readouterr() == ("", "")
    both = rc[0:2].apply_async(talk, 1)
    both.get(timeout=30)
    both.display_outputs()
    assert capsys.readouterr().out == "[stdout:0]\nline 0\n[stdout:1]\nline 0\n"


def test_wait_interactive_progress(
    rc: par.Client, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lv = rc.load_balanced_view()
    ar = lv.map_async(slow, [0.05] * 8)
    ar.wait_interactive(widget=False)
    assert "8/8" in capsys.readouterr().out
    chunked = rc[0:2].map_async(slow, [0.05] * 6)  # two messages of three items
    assert chunked.progress == 0
    chunked.wait_interactive(widget=False)
    assert chunked.progress == len(chunked) == 6 and "6/6" in capsys.readouterr().out
    ar = lv.map_async(slow, [0.5] * 2)
    with pytest.raises(TimeoutError, match="within"):
        ar.wait_interactive(timeout=0.1, widget=False)
    assert "0/2" in capsys.readouterr().out
    monkeypatch.setenv("PAR_NONINTERACTIVE", "1")
    ar.wait_interactive()
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="return_when"):
        ar.wait_interactive(return_when="LATER")


def test_track_and_sent(rc: par.Client) -> None:
    import numpy as np

    data = np.ones(1 << 20)
    untracked = rc.load_balanced_view().apply_async(np.sum, data)
    assert not untracked._trackers and untracked.sent  # nothing to wait for
    for view in (rc.load_balanced_view(track=True), rc.direct_view([0, 1], track=True)):
        ar = view.apply_async(np.sum, data)
        # real zmq.MessageTrackers were attached, one for each frame sent
        assert ar._trackers and all(isinstance(t, zmq.MessageTracker) for t in ar._trackers)
        assert ar.wait_for_send(5) and ar.sent
        assert ar.get(timeout=30) in (data.size, [data.size, data.size])
    dv = rc.direct_view([0, 1])
    for ar in (
        dv.push({"data": data}, block=False, track=True),
        dv.scatter("data", data, block=False, track=True),
    ):
        assert ar._trackers and ar.wait_for_send(5) and ar.sent
        ar.get(timeout=30)
    assert not dv.push({"data": data}, block=False, track=False)._trackers


def test_map_result_iterates_as_results_arrive(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ar = lv.map_async(slow, [0.6, 0.0, 0.0], ordered=False)
    first = next(iter(ar))
    assert first == 0.0 and not ar.done()
    ordered = lv.map_async(slow, [0.3, 0.0])
    assert list(ordered) == [0.3, 0.0] and len(ordered) == 2


def test_async_hub_result_from_replies(rc: par.Client) -> None:
    import pickle

    from par import protocol

    ok = Reply(
        {"id": "m1", "st": "ok", "e": 0, "ts": 1.0, "tc": 2.0, "o": "hi\n"}, [pickle.dumps(5)], []
    )
    err_content = protocol.encode({"ename": "KeyError", "evalue": "x", "traceback": ""})
    bad = Reply({"id": "m2", "st": "error", "e": 1, "en": "KeyError"}, [err_content], [])
    calls: list[list[str]] = []

    def fetch(ids: list[str]) -> dict[str, Reply]:
        calls.append(ids)
        return {"m2": bad} if len(calls) > 1 else {}

    ar = AsyncHubResult(rc, ["m1", "m2"], {"m1": ok}, fetch=fetch, interval=0.05)
    values = ar.get(5, return_exceptions=True)
    assert values[0] == 5 and values[1].ename == "KeyError"
    assert ar.metadata[0]["stdout"] == "hi\n" and ar.metadata[0]["engine_id"] == 0
    assert calls[0] == ["m2"]
