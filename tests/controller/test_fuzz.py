"""Property-based fuzzing of live sockets: whatever arrives, the controller keeps serving."""

from __future__ import annotations

import time

import par
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from par import protocol

frame = st.binary(max_size=256) | st.just(protocol.DELIM)
message = st.lists(frame, min_size=1, max_size=6)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(message, min_size=1, max_size=5),
    st.sampled_from(["client", "engine", "control", "direct", "engine_direct"]),
)
def test_random_multipart_messages_on_live_sockets(rc: par.Client, batch, which: str) -> None:
    url = getattr(rc._info, f"{which}_url")
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 500)
        sock.connect(url)
        for frames in batch:
            sock.send_multipart(frames)
        time.sleep(0.02)
    finally:
        ctx.destroy(linger=500)
    assert rc[0].apply_sync(lambda: "alive") == "alive"


def test_forged_but_well_formed_headers_with_a_valid_signature_are_survived(rc: par.Client) -> None:
    """An authenticated peer sending nonsense fields must not crash the controller."""
    session = protocol.Session(rc._info.key_bytes)
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.connect(rc._info.client_url)
        for header in (
            {"t": "apply", "c": b"x"},
            {"t": "apply", "c": b"x", "q": "d", "ids": ["a"], "tg": [0, 1]},
            {"t": "apply", "c": b"x", "q": "t"},
            {"t": "query", "c": b"x", "op": "abort", "ids": 5},
            {"t": "query", "c": b"x", "op": "db_query", "query": "not a dict"},
            {"t": "query", "c": b"x", "op": "nope"},
            {"t": "execute", "c": 7},
        ):
            sock.send_multipart(session.serialize(header))
        time.sleep(0.3)
    finally:
        ctx.destroy(linger=0)
    assert rc[:].apply_sync(lambda: 1) == [1, 1, 1, 1]
