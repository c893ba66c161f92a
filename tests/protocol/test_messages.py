"""Batches of tasks and of replies: built and taken apart in one place, over the wire too."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from par import messages
from par.messages import (
    BUFFER_COUNTS,
    BUFFERS,
    IDS,
    join_replies,
    join_tasks,
    merge_tasks,
    split_replies,
    split_tasks,
)
from par.protocol import Session

KEY = b"k" * 32

# Each task: its own arguments frame and buffers (possibly none).
task_lists = st.lists(
    st.tuples(st.binary(max_size=40), st.lists(st.binary(max_size=40), max_size=3)),
    min_size=1,
    max_size=8,
)


def _tasks(specs: list[tuple[bytes, list[bytes]]], function: bytes = b"f") -> list[messages.Task]:
    return [(f"id{i}", [function, args], bufs) for i, (args, bufs) in enumerate(specs)]


def _over_the_wire(header: dict[str, Any], payload: list[Any], buffers: list[Any]) -> Any:
    s = Session(KEY)
    msg = s.parse(s.serialize(header, payload, buffers))
    assert msg is not None
    return msg


def _plain(tasks: list[messages.Task]) -> list[tuple[str, list[bytes], list[bytes]]]:
    return [(mid, [bytes(p) for p in own], [bytes(b) for b in bufs]) for mid, own, bufs in tasks]


@given(task_lists)
def test_a_task_batch_comes_apart_into_its_tasks(specs: list[tuple[bytes, list[bytes]]]) -> None:
    tasks = _tasks(specs)
    header: dict[str, Any] = {"t": "apply", "f": "digest"}
    payload, buffers = join_tasks(header, tasks)
    assert header[IDS] == [mid for mid, _, _ in tasks]
    assert split_tasks(header, payload, buffers) == tasks
    msg = _over_the_wire(header, payload, buffers)
    assert _plain(split_tasks(msg.header, msg.payload, msg.buffers)) == tasks


def test_a_batch_sends_its_function_once_and_counts_buffers_only_if_any() -> None:
    header: dict[str, Any] = {BUFFER_COUNTS: [9]}  # a stale count is not kept
    payload, buffers = join_tasks(header, _tasks([(b"a", []), (b"b", [])], b"fn"))
    assert payload == [b"fn", b"a", b"b"] and buffers == [] and BUFFER_COUNTS not in header
    three = _tasks([(b"a", [b"x", b"y"]), (b"b", []), (b"c", [b"z"])])
    payload, buffers = join_tasks(header, three)
    assert payload == [b"f", b"a", b"b", b"c"] and buffers == [b"x", b"y", b"z"]
    assert header[BUFFER_COUNTS] == [2, 0, 1]


def test_a_batch_of_one_is_a_plain_request() -> None:
    """An execute's payload is its code, not a function and arguments: sent as it is."""
    header: dict[str, Any] = {"t": "execute"}
    payload, buffers = join_tasks(header, [("only", [b"x = 1"], [b"raw"])])
    assert (header[IDS], payload, buffers) == (["only"], [b"x = 1"], [b"raw"])
    assert BUFFER_COUNTS not in header
    assert split_tasks(header, payload, buffers) == [("only", [b"x = 1"], [b"raw"])]


@given(st.lists(task_lists, min_size=1, max_size=4))
def test_merged_requests_are_one_batch_of_all_their_tasks(
    groups: list[list[tuple[bytes, list[bytes]]]],
) -> None:
    requests, expected = [], []
    for g, specs in enumerate(groups):
        tasks = [(f"g{g}-{mid}", own, bufs) for mid, own, bufs in _tasks(specs)]
        header: dict[str, Any] = {"t": "apply", "q": "t", "f": "digest", "ts": float(g)}
        requests.append((header, *join_tasks(header, tasks)))
        expected.extend(tasks)
    header, payload, buffers = merge_tasks(requests)
    assert split_tasks(header, payload, buffers) == expected
    msg = _over_the_wire(header, payload, buffers)
    assert _plain(split_tasks(msg.header, msg.payload, msg.buffers)) == expected


def test_only_load_balanced_requests_of_one_function_and_flags_join() -> None:
    base = {"t": "apply", "q": "t", "f": "digest", "rt": 1, "ids": ["a"], "ts": 1.0}
    assert messages.joinable(base, {**base, "ids": ["b", "c"], "ts": 2.0})
    assert messages.joinable({**base, "nb": [2]}, {**base, "ids": ["b", "c"], "nb": [1, 0]})
    assert not messages.joinable(base, {**base, "f": "other"})
    assert not messages.joinable(base, {**base, "rt": 2})
    assert not messages.joinable(base, {**base, "lb": "label"})
    assert not messages.joinable({**base, "q": "d"}, {**base, "q": "d"})


@pytest.mark.parametrize(
    ("header", "payload", "buffers"),
    [
        ({IDS: ["a", "b"]}, [b"f", b"a"], []),  # an argument frame missing
        ({IDS: ["a", "b"], BUFFER_COUNTS: [1, 1]}, [b"f", b"a", b"b"], [b"x"]),
        ({IDS: ["a", "b"], BUFFER_COUNTS: [1]}, [b"f", b"a", b"b"], [b"x"]),
    ],
)
def test_a_task_batch_that_does_not_hold_its_tasks_is_refused(
    header: dict[str, Any], payload: list[bytes], buffers: list[bytes]
) -> None:
    with pytest.raises(ValueError):
        split_tasks(header, payload, buffers)


replies_lists = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(["id", "st", "e", "ts"]), st.integers(-(2**31), 2**31)),
        st.lists(st.binary(max_size=40), max_size=3),
        st.lists(st.binary(max_size=40), max_size=3),
    ),
    min_size=1,
    max_size=6,
)


@given(replies_lists)
def test_a_reply_batch_comes_apart_into_its_replies(replies: list[messages.Parts]) -> None:
    header, payload, buffers = join_replies(replies)
    assert header["t"] == "replies"
    assert split_replies(header, payload, buffers) == replies
    msg = _over_the_wire(header, payload, buffers)
    back = split_replies(msg.header, msg.payload, msg.buffers)
    assert [(h, [bytes(p) for p in pl], [bytes(b) for b in bs]) for h, pl, bs in back] == replies


def test_a_forwarded_reply_in_a_batch_does_not_keep_its_old_buffer_count() -> None:
    received = {"id": "a", BUFFERS: 2}  # it came alone, with two buffers; now it has none
    header, payload, buffers = join_replies([(received, [b"r"], []), ({"id": "b"}, [], [b"x"])])
    assert split_replies(header, payload, buffers) == [
        ({"id": "a"}, [b"r"], []),
        ({"id": "b", BUFFERS: 1}, [], [b"x"]),
    ]


def test_a_reply_batch_whose_counts_do_not_match_is_refused() -> None:
    header, payload, buffers = join_replies([({"id": "a"}, [b"r"], [b"x"])])
    with pytest.raises(ValueError):
        split_replies(header, [*payload, b"extra"], buffers)
    with pytest.raises(ValueError):
        split_replies(header, payload, [])
