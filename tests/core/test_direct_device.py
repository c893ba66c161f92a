"""The direct path: requests and replies routed by the controller's C device, the hub
keeping its books from the device's copies (controller/mux.py)."""

from __future__ import annotations

import os
import signal
import time

import pytest
import zmq
from par import protocol
from par.errors import EngineError


def _shout(text: str) -> str:
    print(text)
    return text


def test_a_direct_request_reaches_its_engine_through_the_device_alone(small_cluster) -> None:
    """A request sent to the device's port, never to the controller's client port, runs
    and its reply comes back on the reply socket the header names."""
    _, rc = small_cluster
    session = protocol.Session(rc._info.key_bytes)
    engine = bytes.fromhex(rc._engines[0]["uuid"])
    me = os.urandom(16)
    ctx = zmq.Context()
    try:
        replies = ctx.socket(zmq.DEALER)
        replies.setsockopt(zmq.ROUTING_ID, me)
        replies.connect(rc._info.direct_url)
        sender = ctx.socket(zmq.DEALER)
        sender.connect(rc._info.direct_url)
        time.sleep(0.2)
        header = {"t": "execute", "q": "d", "ids": ["probe-1"], "tg": [0], "c": me, "x": 1}
        sender.send_multipart([engine, *session.serialize(header, [b"1 + 1"])])
        assert replies.poll(10_000), "no reply through the device"
        msg = session.parse(replies.recv_multipart())
        assert msg is not None and msg.routing == [engine]
        assert msg.header["id"] == "probe-1" and msg.header["st"] == "ok"
    finally:
        ctx.destroy(linger=0)
    # The hub booked it from the device's copies.
    assert rc.result_status(["probe-1"])["completed"] == ["probe-1"]


def test_a_direct_tasks_output_reaches_its_client_and_the_hub_record(small_cluster) -> None:
    _, rc = small_cluster
    for _ in range(20):  # the output often reaches the hub before the request's copy
        ar = rc[0].apply_async(_shout, "hello")
        assert ar.get(timeout=10) == "hello"
        assert ar.stdout == "hello\n"
        (record,) = rc.db_query({"msg_id": ar.msg_ids[0]}, keys=["stdout", "engine_uuid"])
        assert record["stdout"] == "hello\n"
        assert record["engine_uuid"] == rc._engines[0]["uuid"]


def test_direct_requests_and_their_order_are_kept_per_engine(small_cluster) -> None:
    _, rc = small_cluster
    dv = rc[:]
    dv.execute("seen = []", block=True)
    ars = [dv.apply_async(lambda i: seen.append(i), i) for i in range(50)]  # noqa: F821
    for ar in ars:
        ar.get(timeout=10)
    assert dv.pull("seen", block=True) == [list(range(50))] * 2
    status = rc.queue_status()
    assert status[0]["queue"] == 0 and status[0]["completed"] >= 50


def test_a_direct_request_to_an_engine_that_just_died_fails_instead_of_hanging(
    small_cluster,
) -> None:
    _, rc = small_cluster
    pid = rc[1].apply_sync(os.getpid)
    os.kill(pid, signal.SIGKILL)
    ar = rc[1].apply_async(time.sleep, 0)  # the client still takes engine 1 to be up
    with pytest.raises(EngineError):
        ar.get(timeout=30)
    assert rc[0].apply_sync(lambda: "alive") == "alive"


@pytest.mark.parametrize("side", ["direct_url", "engine_direct_url"])
def test_a_one_frame_message_on_a_device_port_loses_no_request(small_cluster, side) -> None:
    """The device relays a message of one frame after its sender's identity as if more
    followed, swallowing the next message: the controller finds that one and delivers it."""
    _, rc = small_cluster
    ctx = zmq.Context()
    try:
        for i in range(5):
            sock = ctx.socket(zmq.DEALER)
            sock.connect(getattr(rc._info, side))
            sock.send(b"x")
            time.sleep(0.05)
            sock.close(linger=500)
            assert rc[0].apply_sync(lambda i=i: i * 2, i) == i * 2
    finally:
        ctx.destroy(linger=0)


def test_the_device_recovers_from_a_one_frame_message_with_curve_on() -> None:
    """With Curve, the hub's nudges (in-process, no handshake) still reach the device."""
    import par

    cluster = par.Cluster(n=1, controller_args=["--curve", "on", "--heartbeat", "0.2"])
    rc = cluster.start_and_connect_sync()
    ctx = zmq.Context()
    try:
        assert rc._info.curve_serverkey
        for side in ("engine_direct_url", "direct_url"):
            sock = ctx.socket(zmq.DEALER)
            rc._info.secure(sock)  # a peer that holds the server's public key
            sock.connect(getattr(rc._info, side))
            sock.send(b"x")
            time.sleep(0.3)  # the device now waits on the rest of it
            sock.close(linger=500)
            assert rc[0].apply_sync(lambda: "alive") == "alive"
    finally:
        ctx.destroy(linger=0)
        cluster.stop_cluster_sync()


def test_a_direct_view_naming_an_engine_twice_is_refused(small_cluster) -> None:
    """Each engine answers a request once: a repeated target would leave an id unanswered."""
    _, rc = small_cluster
    with pytest.raises(ValueError, match=r"name engines \[0\] more than once"):
        rc.direct_view([0, 1, 0]).apply_async(lambda: 1)
    assert rc.direct_view([0, 1]).apply_sync(lambda: 1) == [1, 1]
