"""The wire format and serialization, without processes."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest
import zmq
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


def test_a_lone_head_frame_reads_as_its_header_only_when_it_verifies() -> None:
    """The control relay's heartbeat read: a header-only message, authenticated."""
    s = Session(KEY)
    (beat,) = s.serialize({"t": "hb", "stats": {"cpu": 0.5}})
    assert s.lone_header(beat) == {"t": "hb", "stats": {"cpu": 0.5}}
    assert s.lone_header(zmq.Frame(beat)) == {"t": "hb", "stats": {"cpu": 0.5}}
    (forged,) = Session(b"other key").serialize({"t": "hb"})
    tampered = beat[:-1] + bytes([beat[-1] ^ 1])
    (packed,) = s.serialize({"t": "hb"}, [b"payload"])  # a payload rides in the head frame
    counted, _ = s.serialize({"t": "hb"}, [], [b"buffer"])  # says a buffer follows
    for frame in (forged, tampered, packed, counted, beat[:-1], b"", DELIM, b"x" * 64):
        assert s.lone_header(frame) is None


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


def _chunked(s: Session, buffers: list[bytes]) -> list[list]:
    return s.serialize_parts({"t": "reply", "id": "m"}, [b"pickle"], buffers)


def test_a_message_with_large_buffers_travels_in_chunks_and_joins_back() -> None:
    s = Session(KEY)
    assert len(_chunked(s, [b"x" * 100])) == 1  # small: one message as ever
    big = bytes(range(256)) * (protocol.CHUNK_ABOVE // 256 + 1000)
    buffers = [big, b"", b"tail"]
    parts = _chunked(s, buffers)
    assert parts[0][0].startswith(DELIM) and len(parts[0]) == 1  # the head: no buffers
    chunks = parts[1:]
    assert all(c[0] == protocol.CHUNK for c in chunks)
    assert max(len(c[1]) for c in chunks) == protocol.CHUNK_BYTES
    assert sum(len(c[1]) for c in chunks) == len(big) + 4
    joiner = protocol.Assembler(s)
    got = [joiner.parse([b"sender", *p]) for p in parts]
    assert got[:-1] == [False] * (len(parts) - 1)
    msg = got[-1]
    assert msg and msg.routing == [b"sender"] and [bytes(p) for p in msg.payload] == [b"pickle"]
    assert [bytes(b) for b in msg.buffers] == buffers
    assert "ck" not in msg.header and msg.header["b"] == 3
    assert not joiner.joining and s.dropped == 0


def test_chunks_of_two_senders_interleaved_join_apart() -> None:
    s = Session(KEY)
    a = b"a" * (protocol.CHUNK_ABOVE + 1)
    b = b"b" * (protocol.CHUNK_ABOVE + 2)
    pa, pb = _chunked(s, [a]), _chunked(s, [b])
    joiner = protocol.Assembler(s, keep_chunks=True)
    done = {}
    for i in range(max(len(pa), len(pb))):
        for who, parts in ((b"A", pa), (b"B", pb)):
            if i < len(parts):
                msg = joiner.parse([who, *parts[i]])
                if msg:
                    done[who] = msg
    (kept,) = done[b"A"].buffers
    assert isinstance(kept, protocol.Chunks) and len(kept) == len(a) and bytes(kept) == a
    assert bytes(done[b"B"].buffers[0]) == b


def test_stray_oversized_and_abandoned_chunks_are_dropped_and_counted() -> None:
    s = Session(KEY)
    joiner = protocol.Assembler(s)
    assert joiner.parse([b"x", protocol.CHUNK, b"data"]) is None  # no head before it
    parts = _chunked(s, [b"z" * (protocol.CHUNK_ABOVE + 1)])
    assert joiner.parse([b"x", *parts[0]]) is False
    assert joiner.parse([b"x", *parts[0]]) is False  # a new head: the first is given up
    assert joiner.parse([b"x", protocol.CHUNK, b"y" * (protocol.CHUNK_ABOVE + 2)]) is None
    assert s.dropped == 3 and not joiner.joining
    head = s.serialize({"t": "reply", "ck": ["no"]}, [b"p"])
    assert joiner.parse([b"x", *head]) is None and s.dropped == 4


def test_kept_chunks_are_sent_on_joined() -> None:
    ctx = zmq.Context()
    try:
        a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
        a.bind("inproc://chunks")
        b.connect("inproc://chunks")
        protocol.send_frames(a, [b"head", protocol.Chunks([b"ab", memoryview(b"cd")], 4)])
        assert b.recv_multipart() == [b"head", b"abcd"]
    finally:
        ctx.destroy(linger=0)


def test_a_message_whose_chunks_stopped_coming_is_given_up_when_another_begins() -> None:
    s = Session(KEY)
    joiner = protocol.Assembler(s, stale_after=0.05)
    head = _chunked(s, [b"z" * (protocol.CHUNK_ABOVE + 1)])[0]
    assert joiner.parse([b"gone", *head]) is False
    time.sleep(0.1)
    assert joiner.parse([b"other", *head]) is False
    assert list(joiner.joining) == [(b"other",)] and s.dropped == 1


def test_nbytes_counts_every_byte_of_each_kind_of_frame() -> None:
    """An array's buffer counts all its bytes, not its rows (what ``len`` gives); a
    zmq.Frame, kept chunks and a pickle buffer count as their bytes."""
    grid = np.zeros((3, 1000), dtype=np.float64)
    chunks = protocol.Chunks([b"ab", b"cde"], 5)
    frames = [b"xy", zmq.Frame(b"four"), memoryview(grid), chunks, pickle.PickleBuffer(grid)]
    assert protocol.nbytes(frames) == 2 + 4 + 24_000 + 5 + 24_000
