"""The direct path: requests and replies routed by the controller's C device, the hub
keeping its books from the device's copies (controller/mux.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import par
import pytest
import zmq
from par import paths as cluster_paths
from par import protocol, serialize
from par.client import paths
from par.client.outbox import RequestSender
from par.client.submit import apply_payload
from par.errors import ControllerLost, EngineError


def _shout(text: str) -> str:
    print(text)
    return text


def _device_sockets(ctx: zmq.Context, url: str, me: bytes) -> tuple[zmq.Socket, zmq.Socket]:
    """A client's two connections to the device: requests, and replies (named ``me``)."""
    replies = ctx.socket(zmq.DEALER)
    replies.setsockopt(zmq.ROUTING_ID, me)
    replies.connect(url)
    sender = ctx.socket(zmq.DEALER)
    sender.connect(url)
    time.sleep(0.2)
    return sender, replies


def test_a_direct_request_reaches_its_engine_through_the_device_alone(small_cluster) -> None:
    """A request sent to the device's port, never to the controller's client port, runs
    and its reply comes back on the reply socket the header names."""
    _, rc = small_cluster
    session = protocol.Session(rc._info.key_bytes)
    engine = bytes.fromhex(rc.engines()[0]["uuid"])
    me = os.urandom(16)
    ctx = zmq.Context()
    try:
        sender, replies = _device_sockets(ctx, rc._info.direct_url, me)
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
        assert record["engine_uuid"] == rc.engines()[0]["uuid"]


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


def _echo(data: bytes) -> bytes:
    return data


def test_a_large_request_crosses_the_device_in_chunks_and_its_large_reply_the_hub(
    small_cluster,
) -> None:
    """A request with more than CHUNK_ABOVE bytes of buffers reaches the engine in chunks
    through the device; its large reply comes back whole through the hub, to the client
    its header names (a larger one than the hub takes would come through the device in
    chunks: test_wire_limits.py); the hub keeps both for its records."""
    _, rc = small_cluster
    session = protocol.Session(rc._info.key_bytes)
    engine = bytes.fromhex(rc.engines()[0]["uuid"])
    me = os.urandom(16)
    big = os.urandom(protocol.CHUNK_ABOVE + 12345)
    payload, buffers, digest = apply_payload(_echo, (big,), {})
    header = {"t": "apply", "q": "d", "ids": ["probe-big"], "tg": [0], "c": me, "f": digest}
    parts = session.serialize_parts(header, payload, buffers)
    assert len(parts) > 2
    ctx = zmq.Context()
    try:
        hub = ctx.socket(zmq.DEALER)  # the client's connection to the hub, named as it is
        hub.setsockopt(zmq.ROUTING_ID, me)
        hub.connect(rc._info.client_url)
        sender, replies = _device_sockets(ctx, rc._info.direct_url, me)
        for frames in parts:
            sender.send_multipart([engine, *frames])
        assert hub.poll(30_000), "no reply through the hub"
        msg = session.parse(hub.recv_multipart())
        assert not replies.poll(200), "a reply came through the device too"
    finally:
        ctx.destroy(linger=0)
    assert msg and msg.header["st"] == "ok"
    assert serialize.loads(msg.payload[0], msg.buffers) == big
    (rec,) = rc.db_query({"msg_id": "probe-big"}, keys=["buffers", "result_buffers"])
    assert rec["buffers"][2:] == [big] and rec["result_buffers"][1:] == [big]
    # The hub sends what it kept on, whole: a resubmit runs the request again.
    assert rc.resubmit("probe-big", block=True) == big


def test_a_large_push_to_several_engines_and_what_follows_it_keep_their_order(
    small_cluster,
) -> None:
    """A large push to several engines goes through the hub (it crosses the client's link
    once); requests after it go the same way while it is outstanding, so they run after it."""
    _, rc = small_cluster
    dv = rc[:]
    for n in range(3):
        value = bytes([n]) * (paths.FANOUT_BYTES + 1)
        push = dv.push({"a": value}, block=False)
        ar = dv.apply_async(lambda: a[:1] * 2)  # noqa: F821
        assert ar.get(timeout=30) == [bytes([n]) * 2] * 2
        push.get(timeout=30)
    assert dv.pull("a", block=True) == [value] * 2


def test_a_coalesced_broadcast_and_direct_requests_around_it_run_in_order(small_cluster) -> None:
    """A coalesced broadcast goes through the hub, other direct requests through the
    device; an engine still runs them in the order they were made."""
    _, rc = small_cluster
    dv, bv = rc[:], rc.broadcast_view(is_coalescing=True)
    dv.execute("seen = []", block=True)
    ars = [(bv if i % 3 else dv).apply_async(lambda i: seen.append(i), i) for i in range(60)]  # noqa: F821
    for ar in ars:
        ar.get(timeout=10)
    assert dv.pull("seen", block=True) == [list(range(60))] * 2


def test_a_large_reply_cut_short_by_its_engines_death_is_given_up(small_cluster) -> None:
    """Chunks of a reply still coming from an engine that is lost are not kept waiting."""
    _, rc = small_cluster
    engine = bytes.fromhex(rc.engines()[1]["uuid"])
    head = rc.session.serialize_parts(
        {"t": "reply", "id": "never"}, [b"p"], [bytes(protocol.CHUNK_ABOVE + 1)]
    )[0]
    joiner = rc.receiver.joiner
    with rc.receiver.lease:  # as the receiving thread would take the head
        assert joiner.parse([engine, *head]) is False
    assert (engine,) in joiner.joining
    os.kill(rc[1].apply_sync(os.getpid), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while 1 in rc.ids and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 1 not in rc.ids
    assert (engine,) not in joiner.joining


def test_a_direct_request_made_the_moment_a_client_connects_is_answered(small_cluster) -> None:
    """The device can route a reply to a client only once the client's connection to it is
    up: a client is connected only when it is."""
    import par

    cluster, _ = small_cluster
    conn = par.paths.connection_file(cluster.cluster_id)
    for _ in range(20):
        with par.Client(conn) as rc:
            assert rc[:].apply_async(abs, -1).get(timeout=10) == [1, 1]


def test_a_request_to_many_engines_names_each_engine_its_own_task_alone() -> None:
    """Through the device a request goes to each engine as a message of its own, whose
    header names that engine's task alone: its size does not grow with the engines."""
    session = protocol.Session(protocol.new_key())
    ctx = zmq.Context()
    try:
        sender = RequestSender(ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER), session)
        n = 1000
        engines = [os.urandom(16) for _ in range(n)]
        ids = [f"m-{i}" for i in range(n)]
        header = {"t": "execute", "q": "d", "ids": ids, "tg": list(range(n)), "c": b"me"}
        messages = sender.build(header, [b"a = 1"], [], engines)
    finally:
        ctx.destroy(linger=0)
    assert len(messages) == n
    for engine, mid, target, frames in zip(engines, ids, range(n), messages, strict=True):
        msg = session.parse(frames)
        assert msg is not None and msg.routing == [engine]
        assert msg.header["ids"] == [mid] and msg.header["tg"] == [target]
        assert [bytes(f) for f in msg.payload] == [b"a = 1"]
        assert len(frames[1]) < 200  # the head frame: a few ids' worth, not a thousand


class _Link:
    """A TCP forwarder between an engine and the device: :meth:`cut` resets the connections
    through it, and until :meth:`mend` new ones are closed as they come (the network down)."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("tcp://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.up = True
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.server.accept()
            except OSError:  # closed
                return
            if not self.up:
                near.close()
                continue
            far = socket.create_connection(self.upstream)
            with self.lock:
                self.pairs.append((near, far))
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(1 << 16):
                b.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        self.up = False
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:  # a reset, not a goodbye: what was on the wire is gone
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)  # wakes its pump (close alone would not)
                sock.close()

    def mend(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self.server.close()


def test_a_direct_connection_that_drops_and_comes_back_fails_what_it_lost_and_no_more(
    tmp_path,
) -> None:
    """ZeroMQ reconnects by itself and says nothing: a request the device routed while the
    engine's direct connection was down went nowhere. It fails once the connection is
    back (it would have waited for ever); a task running across the drop, and one queued
    behind it, are answered; the engine is not lost and serves on."""
    cluster = par.Cluster(n=0)
    cluster.start_controller_sync()
    rc = cluster.connect_client_sync()
    info = json.loads(cluster_paths.connection_file(cluster.cluster_id).read_text())
    link = _Link(info["engine_direct_url"])
    info["engine_direct_url"] = link.url
    (tmp_path / "engine.json").write_text(json.dumps(info))
    engine = subprocess.Popen(
        [sys.executable, "-m", "par.engine", "--file", str(tmp_path / "engine.json")]
    )
    try:
        rc.wait_for_engines(1, timeout=60)
        pid = rc[0].apply_sync(os.getpid)
        # Its reply goes out once the connection is back (one sent while it is down may
        # be lost too, and would fail the same way).
        running = rc[0].apply_async(time.sleep, 3)
        queued = rc[0].apply_async(os.getpid)
        time.sleep(0.5)  # both reached the engine
        link.cut()
        time.sleep(0.5)
        lost = rc[0].apply_async(os.getpid)  # routed to no one
        time.sleep(0.5)
        link.mend()
        with pytest.raises(ControllerLost, match="direct connection dropped and came back"):
            lost.get(timeout=30)
        assert running.get(timeout=30) is None
        assert queued.get(timeout=30) == pid
        assert rc[0].apply_sync(os.getpid) == pid
        assert rc.ids == [0] and engine.poll() is None
    finally:
        rc.close()
        cluster.stop_cluster_sync()
        link.close()
        engine.terminate()
        engine.wait(30)


def test_a_reply_routed_while_a_client_s_direct_connection_was_down_still_reaches_it(
    tmp_path,
) -> None:
    """The device drops a reply for a client it does not reach; the hub kept its copy,
    and the client asks again for the replies of direct requests outstanding for long
    that finished (every ``ASK_AGAIN`` seconds: it comes within two of them)."""
    cluster = par.Cluster(n=1)
    own = cluster.start_and_connect_sync()
    info = json.loads(cluster_paths.connection_file(cluster.cluster_id).read_text())
    link = _Link(info["direct_url"])
    info["direct_url"] = link.url
    (tmp_path / "client.json").write_text(json.dumps(info))
    rc = par.Client(tmp_path / "client.json")
    try:
        rc.wait_for_engines(1, timeout=60)
        pid = rc[0].apply_sync(os.getpid)  # through the link
        ar = rc[0].apply_async(_slow_pid, 1.0)
        time.sleep(0.3)
        link.cut()  # its reply comes while the client is away
        time.sleep(2)
        link.mend()
        assert ar.get(timeout=30) == pid
        assert rc[0].apply_sync(os.getpid) == pid
    finally:
        rc.close()
        own.close()
        cluster.stop_cluster_sync()
        link.close()


def _slow_pid(seconds: float) -> int:
    import os
    import time

    time.sleep(seconds)
    return os.getpid()
