"""Floors: what bare ZeroMQ does on this machine, with Python at each hop.

``broker``: client DEALER -> broker (two ROUTERs) -> worker DEALER and back
over tcp loopback, no serialization: the message path par's round trip
takes, at its cheapest. ``send``: a raw ZeroMQ send of the same bytes as W3
from this process to each worker process and back, with no broker between.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from typing import Any

import zmq

_mp = mp.get_context("fork")


def _broker(ports: Any) -> None:
    ctx = zmq.Context()
    front, back = ctx.socket(zmq.ROUTER), ctx.socket(zmq.ROUTER)
    ports.put(
        (front.bind_to_random_port("tcp://127.0.0.1"), back.bind_to_random_port("tcp://127.0.0.1"))
    )
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    worker = b""
    while True:
        for sock, _ in poller.poll():
            if sock is back:
                msg = back.recv_multipart()
                if msg[1] == b"READY":
                    worker = msg[0]
                elif msg[1] == b"STOP":
                    return
                else:
                    front.send_multipart(msg[1:])
            else:
                msg = front.recv_multipart()
                back.send_multipart([worker, *msg])


def _echo_worker(url: str) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(url)
    sock.send_multipart([b"READY"])
    while True:
        msg = sock.recv_multipart()
        if msg[-1] == b"STOP":
            sock.send_multipart([b"STOP"])
            return
        sock.send_multipart(msg)


def broker(calls: int = 5000, tasks: int = 50_000) -> dict[str, float]:
    """Round-trip latency (median, p99, µs) and pipelined round trips per second."""
    ports = _mp.Queue()
    pb = _mp.Process(target=_broker, args=(ports,), daemon=True)
    pb.start()
    front, back = ports.get(timeout=30)
    pw = _mp.Process(target=_echo_worker, args=(f"tcp://127.0.0.1:{back}",), daemon=True)
    pw.start()
    ctx = zmq.Context()
    c = ctx.socket(zmq.DEALER)
    c.connect(f"tcp://127.0.0.1:{front}")
    try:
        time.sleep(0.3)
        for _ in range(min(calls, 500)):
            c.send_multipart([b"", b"x"])
            c.recv_multipart()
        lat = []
        for _ in range(calls):
            t = time.perf_counter()
            c.send_multipart([b"", b"x"])
            c.recv_multipart()
            lat.append(time.perf_counter() - t)
        t = time.perf_counter()
        sent = got = 0
        while got < tasks:
            while sent < tasks and sent - got < 1000:
                c.send_multipart([b"", b"x"])
                sent += 1
            c.recv_multipart()
            got += 1
        rate = tasks / (time.perf_counter() - t)
        c.send_multipart([b"", b"STOP"])
        pw.join(5)
    finally:
        for p in (pw, pb):
            p.kill()
        ctx.destroy(linger=0)
    lat.sort()
    return {
        "median_us": statistics.median(lat) * 1e6,
        "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
        "tasks_per_s": rate,
    }


def _holder(url: str) -> None:
    """Keep what it receives; send it back when asked."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(url)
    sock.send(b"READY")
    held: Any = b""
    while True:
        frames = sock.recv_multipart(copy=False)
        kind = bytes(frames[0].buffer)
        if kind == b"PUSH":
            held = frames[1]
            sock.send(b"OK")
        elif kind == b"PULL":
            sock.send(held, copy=False)
        else:
            return


def send(nbytes: int, workers: int, repeats: int = 3) -> dict[str, float]:
    """MB/s of sending ``nbytes`` to each of ``workers`` processes, and back (median)."""
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    procs = [
        _mp.Process(target=_holder, args=(f"tcp://127.0.0.1:{port}",), daemon=True)
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    data = bytes(nbytes)
    try:
        idents = [router.recv_multipart()[0] for _ in procs]
        push, pull = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            for ident in idents:
                router.send_multipart([ident, b"PUSH", data], copy=False)
            for _ in idents:
                router.recv_multipart()
            push.append(time.perf_counter() - t)
            t = time.perf_counter()
            for ident in idents:
                router.send_multipart([ident, b"PULL"])
            for _ in idents:
                router.recv_multipart(copy=False)
            pull.append(time.perf_counter() - t)
        for ident in idents:
            router.send_multipart([ident, b"STOP"])
    finally:
        for p in procs:
            p.join(2)
            p.kill()
        ctx.destroy(linger=0)
    total = nbytes * workers / 1e6
    return {
        "push_MBps": total / statistics.median(push),
        "pull_MBps": total / statistics.median(pull),
    }
