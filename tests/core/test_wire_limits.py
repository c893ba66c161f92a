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
