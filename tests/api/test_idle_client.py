"""A client with nothing coming in sleeps until something is due (client/io.py): its
receiving thread wakes for its pings to the controller, about twice a second, not
ten or twenty times; a thread that wants the socket, or closing, rings it awake, and a
thread waiting while another receives sleeps until it is handed the socket or its reply."""

from __future__ import annotations

import os
import signal
import threading
import time

import par
from par.client.io import IOThread

from ..conftest import sleeps


def after_a_ping(io: IOThread) -> float:
    """Return 0.1 s after the client's next ping, its I/O thread dozing until the one
    after: when that one is due."""
    time.sleep(0.3)
    pinged = io.watch.sent
    while io.watch.sent == pinged:  # right after a ping it dozes until the next, 1 s on
        time.sleep(0.01)
    time.sleep(0.1)
    return io.watch.next_ping


def test_an_idle_client_wakes_for_its_pings_not_on_a_clock(rc: par.Client) -> None:
    io = rc.receiver
    assert io.native_id is not None
    time.sleep(0.5)
    before = sleeps(os.getpid(), io.native_id)
    time.sleep(3)
    wakes = sleeps(os.getpid(), io.native_id) - before
    # A ping a second and its answer; it woke 20 times a second on a 0.1 s poll (and
    # every millisecond for 10 ms after each answer).
    assert 2 <= wakes <= 15, wakes


def test_a_thread_waiting_on_a_long_task_wakes_for_its_pings(rc: par.Client) -> None:
    ar = rc[0].apply_async(time.sleep, 3)
    time.sleep(0.2)
    me = threading.get_native_id()
    before = sleeps(os.getpid(), me)
    ar.get(timeout=30)
    # 3 s of waiting: about a ping and its answer a second (it was 11 a second).
    assert sleeps(os.getpid(), me) - before <= 15


def test_a_waiting_thread_takes_the_socket_from_a_dozing_receiver_at_once(
    rc: par.Client,
) -> None:
    io = rc.receiver
    after_a_ping(io)  # nothing in flight: the I/O thread dozes until its next ping
    leaders: list[int | None] = []

    def look() -> None:
        time.sleep(0.3)
        leaders.append(io.leader)

    looker = threading.Thread(target=look)
    ar = rc[0].apply_async(time.sleep, 0.8)
    looker.start()
    ar.get(timeout=30)
    looker.join()
    # It rang the I/O thread's bell: this thread receives its own reply, rather than
    # waiting on the I/O thread to wake for its next ping and hand the reply over.
    assert leaders == [threading.get_ident()]


def test_a_thread_waiting_while_another_receives_sleeps_until_handed_over(
    rc: par.Client,
) -> None:
    first = rc[0].apply_async(time.sleep, 2.5)
    second = rc[1].apply_async(time.sleep, 2.5)
    counted: list[int] = []

    def wait_on_second() -> None:
        me = threading.get_native_id()
        time.sleep(0.3)  # the main thread receives by then
        before = sleeps(os.getpid(), me)
        second.get(timeout=30)
        counted.append(sleeps(os.getpid(), me) - before)

    waiter = threading.Thread(target=wait_on_second)
    waiter.start()
    first.get(timeout=30)
    waiter.join()
    # It wakes for deliveries and the hand-over, and once a second; it woke every 10 ms.
    assert counted and counted[0] <= 15, counted


def test_closing_wakes_the_thread_that_receives() -> None:
    cluster = par.Cluster(n=1)
    client = cluster.start_and_connect_sync()
    controller = int(client.status()["pid"])
    try:
        io = client.receiver
        due = after_a_ping(io)
        # A stopped controller does not answer the client's goodbye, which would wake it.
        os.kill(controller, signal.SIGSTOP)
        client.close()
        assert not io.is_alive()
        assert time.monotonic() < due  # its bell woke it: it did not sleep on to the ping
    finally:
        os.kill(controller, signal.SIGCONT)
        cluster.stop_cluster_sync()
