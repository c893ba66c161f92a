"""An idle engine waits for what is next due, not on a clock (par/bell.py): with a
heartbeat 30 s apart its threads sleep for seconds at a time, yet a task's output
streams at once, and a stop is said to the controller before the engine goes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import par
import pytest
from par.testing import wait_gone

SLOW_BEATS = ["--heartbeat", "30", "--heartbeat-timeout", "180"]


@pytest.fixture(scope="module")
def rc() -> Iterator[par.Client]:
    """Two engines whose control threads have nothing due for 30 s at a time."""
    cluster = par.Cluster(n=2, controller_args=SLOW_BEATS)
    client = cluster.start_and_connect_sync()
    try:
        client.wait_for_engines(2, timeout=60)
        yield client
    finally:
        cluster.stop_cluster_sync()


def test_a_task_s_output_streams_while_nothing_else_is_due(rc: par.Client) -> None:
    def speaks_then_waits() -> None:
        print("started", flush=True)
        time.sleep(6)

    time.sleep(1)  # the engines' control threads doze until the next heartbeat
    ar = rc[0].apply_async(speaks_then_waits)
    deadline = time.monotonic() + 5
    while not ar.stdout and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ar.stdout == "started\n"  # streamed: the task still sleeps
    assert not ar.ready()
    ar.get(timeout=30)


def test_an_idle_engine_told_to_stop_says_so_before_it_goes(rc: par.Client) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def on_event(kind: str, data: dict[str, Any]) -> None:
        with lock:
            seen.append((kind, data))

    rc.subscribe_events(on_event)
    target = rc.ids[-1]
    pid = rc[target].apply_sync(os.getpid)
    time.sleep(1)  # idle: both of its threads wait
    os.kill(pid, signal.SIGTERM)
    assert wait_gone([pid]) == []
    deadline = time.monotonic() + 30
    while target in rc.ids and time.monotonic() < deadline:
        time.sleep(0.05)
    with lock:
        gone = [(kind, data["reason"]) for kind, data in seen if data.get("id") == target]
    # "stopped" comes from the engine's own word; a connection that just closed is "lost"
    assert gone == [("engine_stopped", "stopped")]
