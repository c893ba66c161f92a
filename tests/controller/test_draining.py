"""Draining a socket in bounded turns: every message received is handled, once, in order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from par import protocol
from par.client.io import DRAIN_LIMIT, IOThread
from par.controller.app import Controller


@pytest.fixture
def pair() -> Iterator[tuple[zmq.Socket, zmq.Socket]]:
    ctx = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.setsockopt(zmq.SNDHWM, 0)
    b.setsockopt(zmq.RCVHWM, 0)
    a.bind("inproc://drain")
    b.connect("inproc://drain")
    yield a, b
    ctx.destroy(linger=0)


def _send(sock: zmq.Socket, n: int) -> None:
    for i in range(n):
        sock.send_multipart([b"m", str(i).encode()])


def _numbers(handled: list[list[Any]]) -> list[int]:
    return [int(bytes(frames[1])) for frames in handled]


def test_the_controller_handles_every_message_across_turns(
    pair: tuple[zmq.Socket, zmq.Socket],
) -> None:
    a, b = pair
    _send(a, 600)
    handled: list[list[Any]] = []
    for _ in range(3):  # 256 a turn, as the poll loop calls it
        b.poll(1000)
        Controller._drain(b, handled.append, limit=256)
    assert _numbers(handled) == list(range(600))


def test_the_client_handles_every_message_across_turns(
    pair: tuple[zmq.Socket, zmq.Socket],
) -> None:
    a, b = pair
    n = DRAIN_LIMIT * 2 + 5
    _send(a, n)
    handled: list[list[Any]] = []
    io = IOThread.__new__(IOThread)
    io._handle = handled.append  # type: ignore[method-assign]
    while len(handled) < n:
        assert b.poll(1000)
        io._drain(b, b.recv_multipart(copy=False))
    assert _numbers(handled) == list(range(n))


def test_a_drain_told_to_stop_leaves_the_rest_waiting(
    pair: tuple[zmq.Socket, zmq.Socket],
) -> None:
    """A waiting thread stops once its result is in; the next receiver gets the rest."""
    a, b = pair
    _send(a, 10)
    handled: list[list[Any]] = []
    assert b.poll(1000)
    protocol.drain(b, b.recv_multipart(copy=False), handled.append, stop=lambda: len(handled) == 4)
    assert _numbers(handled) == [0, 1, 2, 3]
    protocol.drain(b, b.recv_multipart(copy=False), handled.append)
    assert _numbers(handled) == list(range(10))
