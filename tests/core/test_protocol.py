"""The wire format and serialization, without processes."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from par import protocol, serialize
from par.protocol import DELIM, Session

KEY = b"k" * 32


def test_a_signed_message_parses_back() -> None:
    s = Session(KEY)
    frames = s.serialize({"t": "apply", "id": "abc"}, [b"payload"], [b"raw buffer"])
    msg = s.parse([b"route", *frames])
    assert msg is not None
    assert msg.routing == [b"route"]
    assert msg.header == {"t": "apply", "id": "abc", "b": 1, "pk": [7]}
    assert msg.payload == [b"payload"]
    assert msg.buffers == [b"raw buffer"]
    assert msg.body() == frames


def test_small_payloads_ride_in_the_head_frame_and_large_ones_in_their_own() -> None:
    s = Session(KEY)
    small = s.serialize({"t": "apply"}, [b"one", b"two"])
    assert len(small) == 1
    big = b"x" * protocol.PACK_BELOW
    large = s.serialize({"t": "apply"}, [b"one", big], [b"raw"])
    assert len(large) == 4 and large[1:] == [b"one", big, b"raw"]
    for frames, payload in ((small, [b"one", b"two"]), (large, [b"one", big])):
        msg = s.parse(frames)
        assert msg is not None and [bytes(p) for p in msg.payload] == payload


def test_a_forwarded_header_is_framed_anew() -> None:
    """A received header re-sent with other frames must not keep its old framing keys."""
    s = Session(KEY)
    received = s.parse(s.serialize({"t": "reply"}, [b"small"], [b"raw"]))
    assert received is not None and received.header["pk"] == [5] and received.header["b"] == 1
    big = b"z" * protocol.PACK_BELOW
    again = s.parse(s.serialize(received.header, [big]))
    assert again is not None and [bytes(p) for p in again.payload] == [big] and not again.buffers
    assert "pk" not in again.header and "b" not in again.header


def _header_bytes(header: dict) -> bytes:
    raw = protocol.encode(header)
    return len(raw).to_bytes(4, "little") + raw


@pytest.mark.parametrize(
    "tamper",
    ["header", "packed payload", "payload frame", "signature", "extra frame", "lost frame"],
)
def test_tampered_messages_are_dropped_and_counted(tamper: str) -> None:
    s = Session(KEY)
    big = b"y" * protocol.PACK_BELOW
    frames = s.serialize({"t": "apply"}, [b"one", b"two"] if "packed" in tamper else [b"one", big])
    head = frames[0]
    if tamper == "header":
        frames[0] = head[: protocol.HEAD_START] + _header_bytes({"t": "execute"})
    elif tamper == "packed payload":
        frames[0] = head[:-3] + b"ONE"
    elif tamper == "payload frame":
        frames[1] = b"ONE"
    elif tamper == "signature":
        frames[0] = DELIM + bytes(16) + head[protocol.HEAD_START :]
    elif tamper == "extra frame":
        frames.append(b"three")
    else:
        frames.pop()
    assert s.parse(frames) is None
    assert s.dropped == 1


def test_a_head_frame_whose_lengths_do_not_add_up_is_dropped() -> None:
    s = Session(KEY)
    for body in (
        (10_000).to_bytes(4, "little") + protocol.encode({"t": "x"}),
        _header_bytes({"t": "x", "pk": [5]}) + b"abc",
        _header_bytes({"t": "x", "pk": "five"}) + b"abcde",
        _header_bytes({"t": "x"}) + b"trailing",
    ):
        frames = [DELIM + s.sign(body, []) + body]
        assert s.parse(frames) is None
    assert s.dropped == 4


def test_a_message_signed_with_another_key_is_dropped() -> None:
    frames = Session(b"other key").serialize({"t": "apply"}, [b"x"])
    s = Session(KEY)
    assert s.parse(frames) is None
    assert s.dropped == 1


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="key is required"):
        Session(b"")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.booleans())
def test_arbitrary_frames_never_raise(frames: list[bytes], with_delim: bool) -> None:
    s = Session(KEY)
    if with_delim:
        frames = [*frames[:2], DELIM, *frames[2:]]
    assert s.parse(frames) is None


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=16), max_size=5
    )
)
def test_any_signed_header_round_trips(header: dict) -> None:
    s = Session(KEY)
    header.pop("b", None)
    header.pop("pk", None)
    msg = s.parse(s.serialize(dict(header), [b"p"]))
    assert msg is not None and {k: v for k, v in msg.header.items() if k != "pk"} == header


def test_large_arrays_and_bytes_leave_the_pickle_as_buffers() -> None:
    arr = np.arange(1_000_000, dtype=np.float64)
    blob = b"z" * 200_000
    data, buffers = serialize.dumps({"arr": arr, "blob": blob, "small": b"tiny"})
    assert len(buffers) == 2
    assert len(data) < 10_000
    back = serialize.loads(data, [b.raw() for b in buffers])
    np.testing.assert_array_equal(back["arr"], arr)
    assert back["blob"] == blob and back["small"] == b"tiny"


def test_received_arrays_point_into_the_received_buffer() -> None:
    arr = np.arange(100_000, dtype=np.int64)
    data, buffers = serialize.dumps(arr)
    received = bytearray(buffers[0].raw())
    back = serialize.loads(data, [received])
    received[:8] = (42).to_bytes(8, "little")
    assert back[0] == 42  # no copy was made on the way in


def test_unpicklable_objects_raise_a_clear_error() -> None:
    import threading

    with pytest.raises(serialize.SerializationError, match="cannot pickle"):
        serialize.dumps(threading.Lock())


def test_function_digest_is_stable_and_code_keeps_its_file_name() -> None:
    def f(x: int) -> int:
        return x + 1

    data1, d1 = serialize.dumps_function(f)
    _, d2 = serialize.dumps_function(f)
    assert d1 == d2
    g = pickle.loads(data1)
    assert g(1) == 2
    assert g.__code__.co_filename == __file__
