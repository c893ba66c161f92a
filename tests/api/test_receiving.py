"""Who receives a client's replies: a thread waiting on a result, or the I/O thread."""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait

import par
import pytest
from par import AsyncResult


def slow(x: float) -> float:
    import time

    time.sleep(x)
    return x


def square(x: int) -> int:
    return x * x


def test_a_waiting_thread_receives_its_reply_itself(rc: par.Client) -> None:
    """The reply reaches the waiting thread without the I/O thread handing it over."""
    handled_by: list[int] = []
    ar = rc[0].apply_async(slow, 0.3)
    ar.add_done_callback(lambda _: handled_by.append(threading.get_ident()))
    assert ar.get(timeout=10) == 0.3
    assert handled_by == [threading.get_ident()]


def test_done_callbacks_added_before_and_after_completion_each_run_once(
    rc: par.Client,
) -> None:
    """A result makes its list of callbacks at the first one: each still runs once."""
    calls: list[str] = []
    ar = rc[0].apply_async(slow, 0.2)
    ar.add_done_callback(lambda _: calls.append("before"))
    ar.add_done_callback(lambda _: calls.append("also before"))
    ar.get(timeout=10)
    deadline = time.monotonic() + 10  # the thread that took the reply runs them
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    ar.add_done_callback(lambda _: calls.append("after"))  # runs at once
    assert calls == ["before", "also before", "after"]
    done = rc[1].apply_async(slow, 0)
    done.get(timeout=10)
    done.add_done_callback(lambda f: calls.append(f"first after: {f.result()}"))
    assert calls[-1] == "first after: 0"


def test_a_done_callback_may_wait_on_another_result(rc: par.Client) -> None:
    """A callback run while replies are handled can wait for a result still to come."""
    seen: list[float] = []
    later = rc[1].apply_async(slow, 0.6)
    first = rc[0].apply_async(slow, 0.2)
    first.add_done_callback(lambda _: seen.append(later.get(timeout=10)))
    first.get(timeout=10)
    assert seen == [0.6]


def test_a_done_callback_may_wait_while_no_thread_waits(rc: par.Client) -> None:
    """The same when the I/O thread runs the callback: nobody waits on ``first``."""
    seen: list[float] = []
    done = threading.Event()
    later = rc[1].apply_async(slow, 0.6)
    first = rc[0].apply_async(slow, 0.2)

    def on_first(_: object) -> None:
        seen.append(later.get(timeout=10))
        done.set()

    first.add_done_callback(on_first)
    assert done.wait(15)
    assert seen == [0.6]
    assert later.done()


def test_threads_waiting_together_all_get_their_results(rc: par.Client) -> None:
    """One thread receives at a time; the others' replies reach them all the same."""
    view = rc[:]

    def calls(k: int) -> list[int]:
        return [view.apply_sync(square, k * 100 + i)[k % 4] for i in range(40)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(calls, range(4)))
    assert results == [[(k * 100 + i) ** 2 for i in range(40)] for k in range(4)]


def test_a_timeout_while_receiving_is_kept(rc: par.Client) -> None:
    """A wait with a timeout ends when it is up, though this thread was receiving."""
    ar = rc[2].apply_async(slow, 3)
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        ar.get(timeout=0.3)
    assert time.monotonic() - t < 2.5  # not the task's 3 s, nor twice the timeout
    assert not ar.wait(0)
    assert ar.get(timeout=10) == 3


def test_events_reach_listeners_while_a_thread_receives(rc: par.Client) -> None:
    """Events the controller sends while a user's thread receives still reach listeners."""
    kinds: list[str] = []
    rc.subscribe_events(
        lambda kind, data: kinds.append("backlog" if data.get("backlog") else kind), tasks=True
    )
    rc[0].apply_sync(square, 3)
    deadline = time.monotonic() + 10
    while "activity" not in kinds and time.monotonic() < deadline:
        rc[0].apply_sync(square, 3)
    assert "activity" in kinds


def test_an_interrupted_wait_loses_nothing(rc: par.Client) -> None:
    """Ctrl-C while this thread receives stops the wait; the result still arrives."""
    import signal

    ar = rc[3].apply_async(slow, 1.0)
    main = threading.main_thread().ident
    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        ar.get(timeout=10)
    assert ar.get(timeout=10) == 1.0
    assert rc[3].apply_sync(square, 7) == 49  # and the client goes on receiving


def test_iterating_a_map_receives_on_the_iterating_thread(rc: par.Client) -> None:
    """Iterating a map's results waits as get() does: receiving on this thread."""
    handled_by: list[int] = []
    amr = rc.load_balanced_view().map_async(slow, [0.2, 0.3, 0.1])
    amr.add_done_callback(lambda _: handled_by.append(threading.get_ident()))
    assert list(amr) == [0.2, 0.3, 0.1]
    assert handled_by == [threading.get_ident()]


def test_wait_interactive_returns_once_its_condition_is_reached(rc: par.Client) -> None:
    """FIRST_COMPLETED ends the wait at the first result, not at the next interval."""
    amr = rc.load_balanced_view().map_async(slow, [0.2, 4])
    t = time.monotonic()
    amr.wait_interactive(interval=30, widget=False, return_when="FIRST_COMPLETED")
    assert time.monotonic() - t < 3.5  # the first task's 0.2 s, not the 30 s interval
    assert amr.progress == 1 and not amr.done()
    assert amr.get(timeout=20) == [0.2, 4]


def test_a_waiting_thread_polls_for_spin_wait_then_sleeps(rc: par.Client) -> None:
    """A blocking wait polls (costing CPU time) for ``spin_wait`` seconds at most, then
    sleeps until the reply comes."""
    kept = rc.spin_wait
    try:
        used = {}
        for spin in (0.0, 0.3):
            rc.spin_wait = spin
            cpu = time.thread_time()
            assert rc[0].apply_sync(slow, 1.0) == 1.0
            used[spin] = time.thread_time() - cpu
        # Upper bounds only, and a ratio: on a loaded machine a polling thread gets little
        # CPU time, but still far more than one that sleeps.
        assert used[0.0] < 0.1  # slept through the task
        assert used[0.3] < 0.6  # polled for its 0.3 s at most, then slept
        assert used[0.3] > 3 * used[0.0]  # it did poll
    finally:
        rc.spin_wait = kept


def test_threads_may_wait_on_a_result_as_on_any_future(rc: par.Client) -> None:
    """Future's own waits (its condition, waiters) see the reply the I/O thread delivers."""
    ar = rc[0].apply_async(slow, 0.3)
    with ThreadPoolExecutor(2) as pool:
        error = pool.submit(Future.exception, ar, 10)
        waited = pool.submit(futures_wait, [ar], 10, FIRST_COMPLETED)
        assert error.result(timeout=15) is None
        assert waited.result(timeout=15).done == {ar}
    assert ar.get() == 0.3


def test_future_s_own_result_gives_the_value_or_raises_the_error(rc: par.Client) -> None:
    """``Future.result`` called unbound (as a library holding plain futures does) gives
    what ``get`` gives: a value, a map's list, or the remote error raised."""
    one = rc[0].apply_async(square, 7)
    many = rc.load_balanced_view().map_async(square, range(5))
    failed = rc[1].apply_async(lambda: 1 / 0)
    assert Future.result(one, 30) == 49
    assert Future.result(many, 30) == [0, 1, 4, 9, 16]
    with pytest.raises(par.RemoteError) as err:
        Future.result(failed, 30)
    assert err.value.ename == "ZeroDivisionError"
    assert Future.exception(failed, 0) is err.value


def test_a_wait_on_one_result_outlasts_the_replies_of_others(rc: par.Client) -> None:
    """Results share the client's condition, notified at every reply: a wait on one
    (result, exception, wait, concurrent.futures.wait, and Future's own exception, called
    unbound) ends when that one is done or its time is up, not at
    another result's reply."""
    lv = rc.load_balanced_view(targets=[1, 2])
    long = rc[0].apply_async(slow, 1.0)
    with ThreadPoolExecutor(5) as pool:
        error = pool.submit(long.exception, 30)
        value = pool.submit(long.result, 30)
        waited = pool.submit(long.wait, 30)
        futures = pool.submit(futures_wait, [long], 30)
        futures_error = pool.submit(Future.exception, long, 30)
        futures_value = pool.submit(Future.result, long, 30)
        while not long.done():  # replies to other results all along
            assert rc.wait([lv.apply_async(square, i) for i in range(20)], timeout=30)
        assert error.result(timeout=15) is None and value.result(timeout=15) == 1.0
        assert waited.result(timeout=15) is True and futures.result(timeout=15).done == {long}
        assert futures_error.result(timeout=15) is None
        assert futures_value.result(timeout=15) == 1.0
    for wait in (AsyncResult.exception, Future.exception):
        longer = rc[0].apply_async(slow, 2.0)
        started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:
            timed = pool.submit(wait, longer, 0.5)
            while not timed.done():
                assert rc.wait([lv.apply_async(square, 3)], timeout=30)
            with pytest.raises(TimeoutError):
                timed.result()
        assert time.monotonic() - started >= 0.45
        assert longer.get(timeout=30) == 2.0


def test_a_result_cancelled_before_its_reply_stays_cancelled(
    rc: par.Client, caplog: pytest.LogCaptureFixture
) -> None:
    """As ipyparallel's: its reply, when it comes, changes nothing (it was an error in
    the receiving thread, logged with its traceback)."""
    ar = rc[0].apply_async(slow, 0.3)
    assert ar.cancel() and ar.cancelled()
    with caplog.at_level("ERROR", logger="par"):
        assert rc[0].apply_sync(square, 3) == 9  # queued behind it: its reply came first
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    assert ar.cancelled()
    with pytest.raises(CancelledError):
        ar.get(timeout=5)


def test_a_held_result_is_five_objects_for_the_collector(rc: par.Client) -> None:
    """A loop of apply_async holds thousands of finished results, and every full
    collection walks each object they keep: a result, its message ids, its reply, the
    dict of its replies and the client's weak reference to it. A list of waiters is made
    only when concurrent.futures' wait adds one, and the wait still ends with the result."""
    lv = rc.load_balanced_view()
    gc.collect()
    before = len(gc.get_objects())
    held = [lv.apply_async(square, i) for i in range(500)]
    assert rc.wait(held, timeout=60)
    gc.collect()
    assert (len(gc.get_objects()) - before) / len(held) < 5.5
    assert not any("_waiters" in vars(ar) for ar in held)
    late = rc[0].apply_async(slow, 0.5)
    done, _ = futures_wait([late], timeout=30)
    assert done == {late} and late.get() == 0.5
    assert vars(late)["_waiters"] == []  # the wait's waiter, added and taken away
