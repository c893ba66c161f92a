"""Large results: the engine's reply batching counts their bytes, and a client takes one
in without holding it twice."""

from __future__ import annotations

import pickle

import par
from par import serialize
from par.engine.app import BATCH_BYTES, Outbox
from par.protocol import Session


def two_megabytes() -> bytes:
    return b"r" * (2 << 20)


def test_large_results_come_back_without_the_engine_calling_them_malformed(
    cluster: par.Cluster, rc: par.Client
) -> None:
    lv = rc.load_balanced_view()
    assert lv.map_sync(lambda _: two_megabytes(), range(8)) == [two_megabytes()] * 8
    assert rc[:].apply_sync(two_megabytes) == [two_megabytes()] * 4
    logs = sorted((cluster.context.cluster_dir / "logs").glob("engine-*.log"))
    assert logs
    for log in logs:
        assert "malformed" not in log.read_text(), log.read_text()[-2000:]


def test_a_reply_larger_than_the_batch_bound_is_due_at_once() -> None:
    data, buffers = serialize.dumps(two_megabytes())
    assert buffers and isinstance(buffers[0], pickle.PickleBuffer)
    outbox = Outbox(Session(b"k" * 32))
    outbox.add(({"t": "reply", "id": "a"}, [data], buffers), None)
    assert outbox.nbytes > BATCH_BYTES
    assert outbox.due()


PEAK_OF_A_LARGE_RESULT = """
import gc, sys, par
from pathlib import Path

def memory(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

def ones(n):
    import numpy as np
    return np.ones(n, dtype=np.uint8)

n = int(sys.argv[2])
rc = par.Client(sys.argv[1])
rc[0].apply_sync(ones, 1000)  # everything imported and warm
gc.collect()
before = memory("VmRSS")
result = rc[0].apply_sync(ones, n)
assert result.nbytes == n and result[-1] == 1
print((memory("VmHWM") - before) / n)
"""


def test_a_large_result_arriving_in_chunks_is_received_into_one_buffer(
    cluster: par.Cluster, rc: par.Client
) -> None:
    """Its chunks fill a buffer whose memory is taken only as they come: a client holds a
    large result about once, not the result and its chunks queued behind a zeroed copy."""
    import subprocess
    import sys

    from par import paths

    n = 256 << 20
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_OF_A_LARGE_RESULT,
            str(paths.connection_file(cluster.cluster_id)),
            str(n),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # About 1.1 on a quiet machine. Chunks that arrive faster than the client copies them
    # wait in ZeroMQ, up to the result's size on a busy one (1.8 seen in CI): what this
    # bounds is a second copy of the whole result kept beside those (2.5 and more). That
    # the buffer itself costs nothing until filled, whatever the load, is checked below.
    assert float(out.stdout) < 2.4


MEMORY_OF_A_JOINING_BUFFER = """
import sys
from pathlib import Path
from par.protocol import CHUNK, CHUNK_BYTES, Assembler, Session

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

n = int(sys.argv[1])
session = Session(b"k" * 32)
head, *chunks = session.serialize_parts({"t": "reply", "id": "a"}, [b"p"], [b"r" * n])
del chunks  # each chunk is made as it is fed, as one arrives
assembler = Assembler(Session(b"k" * 32))
before = rss()
assert assembler.parse(head) is False
announced = rss() - before
msg = False
for start in range(0, n, CHUNK_BYTES):
    msg = assembler.parse([CHUNK, b"r" * min(CHUNK_BYTES, n - start)])
assert msg and bytes(msg.buffers[0][-3:]) == b"rrr" and len(msg.buffers[0]) == n
print(announced / n, (rss() - before) / n)
"""


def test_a_buffer_joined_from_chunks_takes_memory_only_as_they_fill_it() -> None:
    """The message that announces a large result takes none of its size; the chunks, once
    all in, take it once (``bytearray(n)`` would take it all at the announcement, while
    the chunks still queue behind it)."""
    import subprocess
    import sys

    n = 256 << 20
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_OF_A_JOINING_BUFFER, str(n)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    announced, filled = (float(x) for x in out.stdout.split())
    assert announced < 0.05
    assert 0.9 < filled < 1.2
