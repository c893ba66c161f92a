"""What the controller takes from its peers: frames up to ``--max-message-bytes``, a
larger one refused before it is read, and clients and engines that say so rather than
send one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import par
import pytest
import zmq

LIMIT = 16 << 20  # the least a controller takes


def memory(pid: int, field: str) -> int:
    """A process's ``VmRSS`` (resident now) or ``VmHWM`` (its peak), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


@pytest.fixture
def limited() -> Iterator[tuple[par.Cluster, par.Client]]:
    """Two engines under a controller that takes frames of at most LIMIT bytes."""
    c = par.Cluster(n=2, controller_args=["--max-message-bytes", str(LIMIT)])
    rc = c.start_and_connect_sync()
    try:
        yield c, rc
    finally:
        c.stop_cluster_sync()


@pytest.mark.parametrize("which", ["client_url", "direct_url"])
def test_a_keyless_sender_s_oversized_frame_is_refused_before_it_is_read(
    limited: tuple[par.Cluster, par.Client], which: str
) -> None:
    _, rc = limited
    pid = rc._info.controller_pid
    resident = memory(pid, "VmRSS")
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)  # no key, no Curve: anyone on this machine
        sock.connect(getattr(rc._info, which))
        sock.send(b"x" * (6 * LIMIT))
        rc.spin()
        assert rc[:].apply_sync(abs, -1) == [1, 1]
    finally:
        ctx.destroy(linger=1000)
    assert memory(pid, "VmHWM") - resident < 2 * LIMIT, "the controller read the frame"


def test_a_push_larger_than_the_controller_takes_goes_to_each_engine_in_chunks(
    limited: tuple[par.Cluster, par.Client],
) -> None:
    _, rc = limited
    big = b"p" * (LIMIT + 1)
    rc[:].push({"big": big}, block=True)
    assert [len(x) for x in rc[:].pull("big", block=True)] == [LIMIT + 1] * 2


def test_a_task_argument_larger_than_the_controller_takes_is_refused_at_once(
    limited: tuple[par.Cluster, par.Client],
) -> None:
    _, rc = limited
    with pytest.raises(ValueError, match=rf"a frame of {LIMIT + 1} bytes is more than the"):
        rc.load_balanced_view().apply_async(len, b"a" * (LIMIT + 1))
    assert rc.outstanding == set()
    assert rc.load_balanced_view().apply_sync(len, b"a" * LIMIT) == LIMIT


def test_a_result_larger_than_the_controller_takes_is_an_error_that_says_so(
    limited: tuple[par.Cluster, par.Client],
) -> None:
    _, rc = limited
    lv = rc.load_balanced_view()
    with pytest.raises(par.RemoteError) as err:
        lv.apply_sync(lambda n: b"r" * n, LIMIT + 1)
    assert err.value.ename == "ValueError"
    assert f"a frame of {LIMIT + 1} bytes, more than the controller takes" in err.value.evalue
    assert rc[0].apply_sync(lambda n: len(b"r" * n), LIMIT + 1) == LIMIT + 1  # through the device
    assert len(rc[0].apply_sync(lambda n: b"r" * n, LIMIT + 1)) == LIMIT + 1  # in chunks
    assert lv.map_sync(abs, [-1, -2]) == [1, 2]
    assert rc.ids == [0, 1]


STOPPED_CLIENT = """
import sys, par
rc = par.Client(sys.argv[1], controller_timeout=60)
rc.wait_for_engines(2, timeout=30)
n = int(sys.argv[2])
ar = rc.load_balanced_view().map_async(lambda i: bytes([i % 256]) * 100_000, range(n))
print("submitted", flush=True)
results = ar.get(timeout=600)
assert [r[:1] for r in results] == [bytes([i % 256]) for i in range(n)]
assert {len(r) for r in results} == {100_000}
print("all", len(results), flush=True)
"""


def test_results_for_a_stopped_client_wait_in_bounded_memory_and_none_is_lost() -> None:
    """A client stopped (SIGSTOP, Ctrl-Z) while its map runs: the controller holds a bounded
    part of the map's results for it, not all of them, and it gets every one on resuming;
    meanwhile other clients are served."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from par import paths

    n = 2000  # 200 MB of results
    c = par.Cluster(n=2, controller_args=["--max-record-bytes", str(8 << 20)])
    rc = c.start_and_connect_sync()
    proc = None
    try:
        pid = rc._info.controller_pid
        resident = memory(pid, "VmRSS")
        conn = str(paths.connection_file(c.cluster_id))
        proc = subprocess.Popen(
            [sys.executable, "-c", STOPPED_CLIENT, conn, str(n)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "submitted"
        os.kill(proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the map stops moving
            before = rc.status()["counts"]["completed"]
            time.sleep(2)
            done = rc.status()["counts"]["completed"]
            if done == before or done >= n:
                break
        held = memory(pid, "VmHWM") - resident
        assert held < 60 << 20, f"the controller took {held >> 20} MB for a stopped client"
        assert rc.status()["slow_clients"] == 1
        assert rc.queue_status()["unassigned"] > 0  # its tasks wait, undispatched
        assert rc.load_balanced_view().map_sync(abs, [-1, -2, -3]) == [1, 2, 3]
        os.kill(proc.pid, signal.SIGCONT)
        assert proc.stdout.readline().split() == ["all", str(n)]
        assert proc.wait(timeout=60) == 0
        assert rc.status()["slow_clients"] == 0
    finally:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()
        c.stop_cluster_sync()
