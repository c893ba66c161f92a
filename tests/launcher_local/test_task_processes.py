"""Processes that tasks start end with their engine, however they detach from it.

Stopping through the launcher (``par stop``, an engine killed first) is checked
for every launcher by the conformance suite (:mod:`par.testing`).
"""

from __future__ import annotations

import os

import par
import psutil
from par.testing import start_lingering_processes, wait_gone


def test_an_engine_stopped_alone_ends_what_its_tasks_started(small_cluster) -> None:
    c, rc = small_cluster
    pid = rc[1].apply_sync(os.getpid)
    started = rc[1].apply_sync(start_lingering_processes)
    # The daemon's parent exited: the engine adopted it.
    assert [psutil.Process(p).ppid() for p in started] == [pid, pid, pid]
    c.stop_engine_sync(1)  # through the controller: the launcher sweeps nothing here
    assert wait_gone([pid, *started]) == []
    assert rc[0].apply_sync(lambda: "on") == "on"


def test_stop_cluster_ends_what_tasks_started() -> None:
    c = par.Cluster(n=2)
    rc = c.start_and_connect_sync()
    try:
        started = [p for ps in rc[:].apply_sync(start_lingering_processes) for p in ps]
    finally:
        c.stop_cluster_sync()
    assert wait_gone(started) == []


def test_a_process_a_task_forks_stops_on_sigterm_as_python_does(small_cluster) -> None:
    _, rc = small_cluster

    def fork_and_terminate() -> int | None:
        import multiprocessing
        import time

        fork = multiprocessing.get_context("fork")
        ready = fork.Event()

        def work() -> None:
            ready.set()
            time.sleep(60)

        worker = fork.Process(target=work)
        worker.start()
        ready.wait(30)
        worker.terminate()
        worker.join(30)
        return worker.exitcode

    assert rc[0].apply_sync(fork_and_terminate) == -15  # not the engine's way of stopping
