"""The Client as ipyparallel programs use it: targets, waiting, queue status, defaults its
views take, and finding a cluster by ipyparallel's ``profile``."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import par
import pytest
from par.errors import ParError


def test_targets_resolve_to_the_engines_they_name_when_the_view_is_made(rc: par.Client) -> None:
    last = rc.ids[-1]
    assert rc.direct_view(-1).targets == last
    assert rc[-1].targets == last
    assert rc.direct_view().targets == "all" and rc.direct_view("all").targets == "all"
    assert rc.load_balanced_view(-1).targets == [last]
    assert rc.load_balanced_view("all").targets is None
    assert rc.load_balanced_view().targets is None
    assert rc[-1].apply_sync(lambda: "last") == "last"  # a single engine: one value
    for key in (None, "all"):
        with pytest.raises(TypeError, match=f"named by integer ids .*not {key!r}"):
            rc[key]  # type: ignore[index]


def test_views_made_after_rc_block_is_set_block(rc: par.Client) -> None:
    rc.block = True
    try:
        assert rc[0].apply(lambda: 5) == 5  # blocks: the value, not an AsyncResult
        assert rc.load_balanced_view().apply(lambda: 6) == 6
        with pytest.raises(par.RemoteError, match="ZeroDivisionError"):
            rc[:].apply(lambda: 1 / 0)  # an engine's error raises, not dropped
    finally:
        rc.block = False
    assert isinstance(rc[0].apply(lambda: 5), par.AsyncResult)


def test_wait_takes_any_future_and_wait_interactive_waits_for_all(rc: par.Client) -> None:
    f: Future[str] = Future()
    threading.Timer(0.1, f.set_result, ["done"]).start()
    assert rc.wait([f], timeout=10)
    assert f.result() == "done"
    never: Future[str] = Future()
    assert not rc.wait(never, timeout=0.1)
    ars = [rc[i].apply_async(time.sleep, 0.2) for i in rc.ids]
    rc.wait_interactive()
    assert all(ar.done() for ar in ars) and rc.outstanding == set()
    rc.wait_interactive()  # nothing outstanding: returns at once


def test_wait_for_engines_without_blocking_gives_a_future(
    cluster: par.Cluster, rc: par.Client
) -> None:
    kept = rc.ids  # as the module's client sees them, which the tests after it use
    with cluster.connect_client_sync() as own:
        n = len(own)
        assert own.wait_for_engines(n) is None
        ready = own.wait_for_engines(n, block=False)
        assert isinstance(ready, Future) and ready.done() and ready.result() is None
        more = own.wait_for_engines(n + 1, timeout=30, block=False)
        assert isinstance(more, Future) and not more.done()
        added = cluster.start_engines_sync(1)
        try:
            assert more.result(timeout=30) is None
        finally:
            cluster.stop_engines_sync(added)
        late = own.wait_for_engines(len(own) + 5, timeout=0.1, block=False)
        with pytest.raises(TimeoutError):
            late.result(timeout=10)
    # The added engine's loss reaches clients after its process ended: the tests after
    # this one must not send work to it through the module's client.
    deadline = time.monotonic() + 15
    while rc.ids != kept and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rc.ids == kept


def test_wait_for_engines_on_a_closed_client_raises_at_once(cluster: par.Cluster) -> None:
    rc = cluster.connect_client_sync()
    waiting = rc.wait_for_engines(len(rc) + 5, timeout=60, block=False)
    rc.close()
    with pytest.raises(ParError, match="closed"):
        waiting.result(timeout=5)  # the wait ends with the client, not after 60 s
    started = time.monotonic()
    with pytest.raises(ParError, match="closed"):
        rc.wait_for_engines(len(rc) + 5, timeout=60)
    assert time.monotonic() - started < 5


def _sleep_and_return(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_closing_a_client_ends_the_waits_on_its_results(
    cluster: par.Cluster, rc: par.Client
) -> None:
    """No reply reaches a closed client: a thread waiting on one of its results, and any
    wait after, fail with ClientClosed at once; the task ran, and another client fetches
    its result."""
    own = cluster.connect_client_sync()
    ar = own[0].apply_async(_sleep_and_return, 1.0)
    mid = ar.msg_ids[0]
    caught: list[BaseException] = []

    def wait() -> None:
        try:
            ar.get()  # no timeout
        except BaseException as exc:
            caught.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    own.close()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert [type(e) for e in caught] == [par.ClientClosed]
    assert "get_result" in str(caught[0])
    with pytest.raises(par.ClientClosed):
        ar.get(timeout=5)
    assert rc.get_result(mid).get(timeout=30) == 1.0


def test_queue_status_of_one_engine_is_its_counts(rc: par.Client) -> None:
    rc[0].apply_sync(lambda: 1)
    one = rc.queue_status(targets=0)
    assert set(one) == {"queue", "completed", "failed", "tasks"} and one["completed"] >= 1
    last = rc.queue_status(-1)
    assert set(last) == set(one)
    everyone = rc.queue_status()
    assert set(everyone) == {*rc.ids, "unassigned"}


def test_a_direct_views_label_is_recorded(rc: par.Client) -> None:
    dv = rc[:]
    with dv.temp_flags(label="direct_map"):
        dv.map_sync(lambda x: x, range(len(rc)))
    dv.set_flags(label="direct_apply").apply_sync(lambda: 1)
    dv.set_flags(label="direct_execute").execute("z = 1", block=True)
    dv.set_flags(label=None)
    found = rc.db_query({"label": {"$glob": "direct_*"}}, keys=["label"])
    labels = sorted(r["label"] for r in found)
    n = len(rc)
    assert labels == sorted(["direct_apply"] * n + ["direct_execute"] * n + ["direct_map"] * n)


def test_profile_names_the_cluster(cluster: par.Cluster) -> None:
    cid = cluster.cluster_id
    with par.Client(profile=cid) as rc:
        assert rc.connection_info.cluster_id == cid and rc.ids
    assert par.Cluster.from_file(profile=cid).cluster_id == cid
    with pytest.raises(ValueError, match="par has no profiles"):
        par.Cluster.from_file("other", profile=cid)
    with pytest.raises(par.ClusterError, match="no cluster 'nowhere'"):
        par.Client(profile="nowhere")


def test_a_client_makes_its_sockets_in_the_context_it_is_given(cluster: par.Cluster) -> None:
    import zmq

    ctx = zmq.Context()
    try:
        with par.Client(cluster_id=cluster.cluster_id, context=ctx) as rc:
            assert rc[0].apply_sync(lambda: "via ctx") == "via ctx"
        assert not ctx.closed  # the caller's context stays theirs to end
        with par.Client(cluster_id=cluster.cluster_id, context=ctx) as again:
            assert again.ids
    finally:
        ctx.term()


def test_debug_prints_the_messages_a_client_sends_and_receives(
    cluster: par.Cluster, capfd: pytest.CaptureFixture[str]
) -> None:
    with par.Client(cluster_id=cluster.cluster_id, debug=True) as rc:
        assert rc.debug and rc.profile == cluster.cluster_id
        capfd.readouterr()
        assert rc[0].apply_sync(lambda: "traced") == "traced"
        err = capfd.readouterr().err
        assert "par.client sent: {" in err and "par.client received: {" in err
        rc.debug = False
        assert rc[0].apply_sync(lambda: "quiet") == "quiet"
        assert "par.client" not in capfd.readouterr().err
    with par.Client(cluster_id=cluster.cluster_id) as rc:
        assert not rc.debug
        assert rc[0].apply_sync(lambda: "quiet") == "quiet"
        rc.debug = True
        assert rc[0].apply_sync(lambda: "traced") == "traced"
    assert capfd.readouterr().err.count("par.client sent: {") >= 1
