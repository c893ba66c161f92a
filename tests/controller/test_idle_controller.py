"""An idle controller wakes for what it has to do, not on a clock: the hub checks engines'
heartbeats when the control relay's batch of them comes (not on a timer of its own
besides), the direct relay nudges its device every ``mux.nudge_every`` seconds rather
than every half heartbeat, and the control relay's thread that waits for the hub's
goodbye sleeps until then."""

from __future__ import annotations

import time

import par
import psutil
from par.controller import mux

from ..conftest import sleeps


def python_sleeps(process: psutil.Process) -> int:
    """The times the Python threads of ``process`` went to sleep (libzmq's own threads
    left out: they wake for every message, whoever asked for it)."""
    total = 0
    for thread in process.threads():
        with open(f"/proc/{process.pid}/task/{thread.id}/comm") as f:
            if f.read().startswith("ZMQbg"):
                continue
        total += sleeps(process.pid, thread.id)
    return total


def test_an_idle_controller_wakes_for_beats_pings_and_nudges_only() -> None:
    cluster = par.Cluster(n=1)  # heartbeats a second apart: a batch every half second
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(1, timeout=60)
        hub = psutil.Process(int(rc.status()["pid"]))
        relays = {p.cmdline()[-1]: p for p in hub.children()}
        processes = {"hub": hub, "control": relays["control"], "direct": relays["direct"]}
        time.sleep(1)
        before = {name: python_sleeps(p) for name, p in processes.items()}
        seconds = 4.0
        time.sleep(seconds)
        rate = {name: (python_sleeps(p) - before[name]) / seconds for name, p in processes.items()}
        # hub: 2 batches, 1 ping, the nudges' copies (2 wakes a nudge) a second; it woke
        # 8.6 times with a timer of its own and nudges every half heartbeat.
        # Measured here, before -> after: hub 5.25 -> 4.5-5, control relay 5.5 -> 3 (a
        # beat, two batches; its waiting thread no longer wakes), direct relay 5.25 -> 2-2.25
        # (each nudge wakes the device twice; it was nudged every half heartbeat).
        assert rate["hub"] <= 6, rate
        assert rate["control"] <= 4.5, rate
        assert mux.nudge_every(30.0) == mux.NUDGE_EVERY >= 2
        assert rate["direct"] <= 3.5, rate
    finally:
        rc.close()
        cluster.stop_cluster_sync()
