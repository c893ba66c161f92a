"""A relay that cannot start says why, in one line, to its controller."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import par
import psutil
import pytest
from par import paths
from par.errors import ControllerLost, RemoteError


@pytest.mark.parametrize("kind", ["control", "direct"])
def test_a_relay_whose_folder_is_gone_answers_an_error_without_a_traceback(
    kind: str, tmp_path: Path
) -> None:
    """What happens when its controller gave up (a busy port) and the other relay, ending
    first, removed their folder while this one still started: its answer goes unread, and
    nothing may land on the controller's terminal (it shares its stderr)."""
    settings = {
        "ip": "127.0.0.1",
        "previous": {},
        "curve_secret": None,
        "max_message_bytes": 1 << 20,
        "folder": str(tmp_path / "gone"),
        "key": "00" * 32,
        "every": 0.5,
        "nudge_every": 2.0,
    }
    relay = subprocess.run(
        [sys.executable, "-m", "par.controller.relays", kind],
        input=json.dumps(settings) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert relay.returncode == 0
    assert relay.stderr == ""
    answer = json.loads(relay.stdout)
    assert "No such file or directory" in answer["error"]
    assert str(tmp_path / "gone") in answer["error"]


def _running(rc: par.Client, kind: str) -> list[psutil.Process]:
    """The controller's running relays of ``kind`` (not one killed and not yet reaped)."""
    hub = psutil.Process(int(rc.status()["pid"]))
    running = []
    for child in hub.children():
        try:
            cmdline = child.cmdline()  # empty for one killed and in the middle of ending
        except psutil.NoSuchProcess:  # a zombie, or reaped since children() listed it
            continue
        if cmdline and cmdline[-1] == kind:
            running.append(child)
    return running


def _relay(rc: par.Client, kind: str) -> psutil.Process:
    (relay,) = _running(rc, kind)
    return relay


def _restarted(
    cluster: par.Cluster, rc: par.Client, kind: str, old: psutil.Process
) -> psutil.Process:
    """The relay that took the place of ``old`` (fails after 30 s, showing the controller's
    log: the test stops the cluster, and the log goes with it)."""
    deadline = time.monotonic() + 30
    while True:
        running = [p for p in _running(rc, kind) if p.pid != old.pid]
        if running:
            (relay,) = running
            return relay
        assert time.monotonic() < deadline, (
            f"the {kind} relay was not started again; the controller's log:\n{_log(cluster)}"
        )
        time.sleep(0.1)


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "still not true after 30 s"
        time.sleep(0.05)


def _log(cluster: par.Cluster) -> str:
    return (paths.log_dir(cluster.cluster_id) / "controller.log").read_text()


def test_a_killed_control_relay_is_started_again_and_engines_register_through_it() -> None:
    """Without it engines' control messages go nowhere: a new engine never registers, and
    the others stop themselves once the controller has been silent for a minute."""
    cluster = par.Cluster(n=2)
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(2, timeout=60)
        old = _relay(rc, "control")
        old.kill()
        new = _restarted(cluster, rc, "control", old)
        assert new.cmdline()[-1] == "control"
        cluster.add_engines(1)
        rc.wait_for_engines(3, timeout=60)  # its registration went through the new relay
        assert sorted(rc[:].apply_sync(os.getpid)) == sorted(
            e["pid"] for e in rc.status()["engines"]
        )
        assert f"control relay (pid {old.pid}) killed by SIGKILL; starting it again" in _log(
            cluster
        )
        assert rc.status()["usage"]["rss"] > new.memory_info().rss  # the new one counted
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def test_a_killed_direct_relay_fails_what_it_held_and_direct_calls_work_again() -> None:
    events: list[dict] = []
    cluster = par.Cluster(n=2)
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(2, timeout=60)
        rc.subscribe_events(
            lambda kind, data: events.append(data) if kind == "relay_restarted" else None
        )
        running = rc[0].apply_async(time.sleep, 10)  # it replies after the failing
        time.sleep(0.5)
        old = _relay(rc, "direct")
        old.suspend()  # what reaches it now stays in its sockets, copied nowhere
        unseen = rc[1].apply_async(os.getpid)
        time.sleep(0.5)
        old.kill()
        for ar in (running, unseen):  # failed, not waited for
            with pytest.raises(ControllerLost, match=r"direct relay \(pid \d+\) killed by SIGKILL"):
                ar.get(timeout=30)
        _restarted(cluster, rc, "direct", old)
        assert rc[:].apply_sync(os.getpid)  # through the new relay
        assert [e["relay"] for e in events] == ["direct"]
        # Engine 0 ran this after the sleep, whose late reply came back to a failed result.
        assert rc[0].apply_sync(abs, -2) == 2
        assert rc.status()["pending"] == 0
        assert "direct relay" in _log(cluster)
    finally:
        rc.close()
        cluster.stop_cluster_sync()


@pytest.mark.parametrize("kind", ["control", "direct"])
def test_a_stopped_relay_is_killed_and_started_again(kind: str) -> None:
    """A relay that still runs but says nothing (stopped here; stuck alike) would hold every
    direct request for ever, or leave engines' heartbeats unanswered until they gave up:
    after ``--relay-timeout`` seconds the controller kills it and starts it again."""
    cluster = par.Cluster(n=1, controller_args=["--relay-timeout", "4"])
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(1, timeout=60)
        old = _relay(rc, kind)
        old.suspend()
        sent = rc[0].apply_async(os.getpid)  # into the stopped direct relay, or past the other
        _restarted(cluster, rc, kind, old)
        if kind == "direct":  # failed, not waited for
            with pytest.raises(ControllerLost, match=r"said nothing for \d+ s"):
                sent.get(timeout=30)
        else:
            assert sent.get(timeout=30) > 0
        assert rc[0].apply_sync(abs, -1) == 1  # through the new relay
        assert rc.ids == [0]  # the engine was not lost meanwhile
        assert f"{kind} relay (pid {old.pid}) said nothing for" in _log(cluster)
    finally:
        rc.close()
        cluster.stop_cluster_sync()


@pytest.mark.parametrize("how", ["stops", "is killed"])
def test_an_engine_that_goes_while_the_control_relay_is_held_up_is_judged_after_it(
    how: str,
) -> None:
    """An engine that stops says so before its connections close, but its goodbye comes
    through the control relay, while the hub sees the connection drop at once. A relay
    held up (starved of CPU: stopped here for 1.5 s) made a clean stop a loss ("closed
    its connection"); an engine killed outright is lost once the relay speaks again."""
    heard: list[tuple[str, str]] = []

    def listen(kind: str, data: dict[str, Any]) -> None:
        if kind in ("engine_lost", "engine_stopped"):
            heard.append((kind, str(data.get("reason"))))

    with par.Cluster(n=2) as rc:
        rc.subscribe_events(listen)
        relay = _relay(rc, "control")
        engine = psutil.Process(rc[1].apply_sync(os.getpid))
        relay.suspend()
        try:
            engine.send_signal(signal.SIGTERM if how == "stops" else signal.SIGKILL)
            engine.wait(30)  # gone, its connections closed, while the relay waits
            time.sleep(1.5)
        finally:
            relay.resume()
        _wait_until(lambda: bool(heard))
        if how == "stops":
            assert heard == [("engine_stopped", "stopped")]
        else:
            assert heard == [
                ("engine_lost", "closed its connection (the process exited or was killed)")
            ]
        assert rc.ids == [0]


def test_a_controller_stopped_with_its_relays_starts_none_again() -> None:
    """Ctrl-Z in ``par start``'s terminal stops the hub and its relays together, for as long
    as the user likes: once they run again, their silence meanwhile is no relay's fault."""
    cluster = par.Cluster(n=1, controller_args=["--relay-timeout", "2"])
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(1, timeout=60)
        hub = psutil.Process(int(rc.status()["pid"]))
        relays = [_relay(rc, "control"), _relay(rc, "direct")]
        for process in [hub, *relays]:
            process.suspend()
        time.sleep(5)
        for process in [*relays, hub]:
            process.resume()
        time.sleep(3)  # some looks at the relays
        assert rc[0].apply_sync(abs, -1) == 1
        assert [p.pid for p in _running(rc, "control") + _running(rc, "direct")] == [
            p.pid for p in relays
        ]
        assert "said nothing" not in _log(cluster)
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def test_a_controller_stopping_does_not_start_its_relays_again() -> None:
    """A stop that reaches every process (systemd stops a service so) may end the relays
    while the hub still serves its last moments: it stops, starting none. The hub here
    looks at its relays every 10 ms, so it would within the shutdown's 0.2 s."""
    cluster = par.Cluster(n=0, controller_args=["--heartbeat", "0.02", "--heartbeat-timeout", "5"])
    cluster.start_controller_sync()
    rc = cluster.connect_client_sync()
    try:
        hub = psutil.Process(int(rc.status()["pid"]))
        relays = hub.children()
        rc.shutdown(hub=True)
        for relay in relays:
            relay.kill()
        hub.wait(30)
        assert "controller 1" in _log(cluster)  # its log is still there to read
        assert "starting it again" not in _log(cluster)
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def test_a_relay_that_keeps_ending_stops_the_controller_saying_why() -> None:
    """Started again for ever, a relay that runs out of memory each time would flap;
    the third end within a minute stops the controller instead, and clients hear it."""
    cluster = par.Cluster(n=1)
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(1, timeout=60)
        restarts: list[dict] = []
        rc.subscribe_events(lambda kind, data: kind == "relay_restarted" and restarts.append(data))
        hub = psutil.Process(int(rc.status()["pid"]))
        relay = _relay(rc, "direct")
        for n in (1, 2):
            relay.kill()
            relay = _restarted(cluster, rc, "direct", relay)
            _wait_until(lambda n=n: len(restarts) == n)  # what was sent before it, failed
            assert rc[0].apply_sync(abs, -1) == 1  # it serves
        waiting = rc[0].apply_async(time.sleep, 30)
        relay.kill()
        hub.wait(30)  # the controller stopped by itself
        with pytest.raises(RemoteError, match=r"the controller stopped|direct relay"):
            waiting.get(timeout=30)  # failed, not waited for
        log = _log(cluster)
        assert "direct relay" in log and "ended 3 times within 60 s" in log
        assert "`par start --restore`" in log
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def test_a_relay_started_again_after_its_folder_went_still_copies_to_the_hub() -> None:
    """A relay that ends by itself removes the relays' ipc folder on its way out, the
    hub's endpoint for the direct device's copies with it: a new direct relay makes the
    folder again, and its copies reach the hub."""
    import shutil

    import zmq
    from par.controller.sockets import Sockets

    sockets = Sockets("127.0.0.1", None, {}, 1 << 20, 64, b"k" * 32, 0.5, 2.0)
    ctx = zmq.Context()
    try:
        old = sockets.relays["direct"].proc
        old.kill()
        old.wait()
        shutil.rmtree(sockets.folder)
        urls = dict(sockets.urls)
        sockets.restart("direct")
        assert sockets.urls == urls and sockets.relays["direct"].proc.pid != old.pid
        engine = ctx.socket(zmq.DEALER)
        engine.setsockopt(zmq.ROUTING_ID, b"engine")
        engine.connect(urls["engine_direct"])
        client = ctx.socket(zmq.DEALER)
        client.setsockopt(zmq.ROUTING_ID, b"client")
        client.connect(urls["direct"])
        engine.send_multipart([b"", b"hello"])  # the device learns the engine
        assert sockets.copies.poll(10_000)
        client.send_multipart([b"engine", b"request"])
        assert engine.poll(10_000) and engine.recv_multipart() == [b"client", b"request"]
        copies = [sockets.copies.recv_multipart() for _ in range(2)]
        assert copies[1] == [b"par-direct-in", b"engine", b"client", b"request"]
    finally:
        ctx.destroy(linger=0)
        sockets.close()


def test_the_public_ports_lie_above_the_range_of_outgoing_connections() -> None:
    """A port bound again later (a relay started again, a controller restored) is not one
    the kernel may have given an outgoing connection meanwhile, or an engine reconnecting
    to it on loopback as its own source port (a TCP self-connect holds it for good)."""
    from par.controller import relays
    from par.controller.sockets import Sockets

    above = relays.listening_ports()
    if above is None:
        pytest.skip("this kernel's range of outgoing ports is unknown or leaves none above")
    with open(relays.EPHEMERAL_PORTS) as f:
        highest = int(f.read().split()[1])
    sockets = Sockets("127.0.0.1", None, {}, 1 << 20, 64, b"k" * 32, 0.5, 2.0)
    try:
        ports = [int(url.rsplit(":", 1)[1]) for url in sockets.urls.values()]
        assert len(ports) == 5 and all(port > highest for port in ports), ports
    finally:
        sockets.close()


@pytest.mark.parametrize("outgoing", ["32768 65000", "no range here"])
def test_without_room_above_the_outgoing_range_any_free_port_is_bound(
    outgoing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zmq
    from par.controller import relays

    (tmp_path / "range").write_text(outgoing)
    monkeypatch.setattr(relays, "EPHEMERAL_PORTS", str(tmp_path / "range"))
    assert relays.listening_ports() is None
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.ROUTER)
        url = relays.bind(sock, "127.0.0.1")
        assert sock.getsockopt_string(zmq.LAST_ENDPOINT) == url
        sock.close(linger=0)
    finally:
        ctx.term()
