"""A monitor's status poll against a real controller: only the engines that changed since
its last poll, every engine's id, and the heartbeats that are late.

Simulated engines report the same figures in every heartbeat, so "nothing changed" is
exact here (a real engine's CPU figure moves from one heartbeat to the next).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import par
from par import paths
from par.controller.usage import MIN_INTERVAL
from par.sim import SimEngines


def poll_until(poll: Callable[[], dict], condition: Callable[[dict], bool]) -> list[dict]:
    """Poll until a reply meets ``condition``; every reply seen (fail after 60 s)."""
    replies = [poll()]
    deadline = time.monotonic() + 60
    while not condition(replies[-1]):
        assert time.monotonic() < deadline, f"still not true: {replies[-1]}"
        time.sleep(0.2)
        replies.append(poll())
    return replies


def test_a_monitors_poll_holds_only_the_engines_that_changed() -> None:
    cluster = par.Cluster(n=0)
    cluster.start_controller_sync()
    rc = cluster.connect_client_sync()
    try:
        with SimEngines(paths.connection_file(cluster.cluster_id), 4, processes=1) as sim:
            rc.wait_for_engines(4, timeout=60)
            monitor = cluster.connect_client_sync()

            def poll() -> dict:
                return monitor.status(changed=True)

            first = poll()
            assert first["engine_ids"] == [0, 1, 2, 3]
            assert [e["id"] for e in first["engines"]] == [0, 1, 2, 3]
            assert poll()["engines"] == []
            assert len(rc.status()["engines"]) == 4  # another call is whole

            rc[1].apply_sync(abs, -1)
            (engine,) = poll()["engines"]
            assert (engine["id"], engine["completed"]) == (1, 1)
            assert poll()["engines"] == []

            (hung,) = sim.hang(1)
            replies = poll_until(poll, lambda r: hung not in r["engine_ids"])
            late = [dict(r["late"]).get(hung, 0.0) for r in replies]
            assert max(late) >= 2.0  # its heartbeat named late while it was still there
            assert all(e["id"] != hung for r in replies for e in r["engines"])
            assert replies[-1]["engine_ids"] == [i for i in range(4) if i != hung]
            monitor.close()
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def test_status_reports_the_memory_and_cpu_of_the_controllers_processes() -> None:
    import psutil

    with par.Cluster(n=2) as rc:
        hub = psutil.Process(int(rc.status()["pid"]))
        processes = [hub, *hub.children()]
        assert len(processes) == 3  # the hub and its two relays
        usage = rc.status()["usage"]
        resident = sum(p.memory_info().rss for p in processes)
        assert 0.8 * resident <= usage["rss"] <= 1.25 * resident
        assert usage["rss"] > 1.5 * hub.memory_info().rss  # the relays are counted

        def cpu_seconds() -> float:
            return sum(sum(p.cpu_times()[:2]) for p in processes)

        time.sleep(MIN_INTERVAL)  # so that this next reading starts a new interval
        rc.status()
        before, start = cpu_seconds(), time.monotonic()
        rc.load_balanced_view().map_sync(abs, range(20_000))
        used = cpu_seconds() - before
        reading = rc.status()["usage"]["cpu"]
        expected = 100 * used / (time.monotonic() - start)
        assert reading > 0
        assert 0.5 * expected <= reading <= 2 * expected, (reading, expected)
