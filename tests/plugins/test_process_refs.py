"""par.process: a launcher records processes it did not start itself (a daemon's), by pid and
start time, and stops them; a pid given to a later process is never taken for the recorded one."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest
from par.process import ProcessRef, stop_all
from par.testing import wait_gone


@pytest.fixture
def orphan() -> Iterator[int]:
    """The pid of a process this one did not start: a shell starts it in the background and
    exits, so init adopts it (as with a daemon's children)."""
    started = subprocess.run(
        ["sh", "-c", "sleep 120 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
    )
    pid = int(started.stdout)
    yield pid
    ProcessRef.from_pid(pid).signal(signal.SIGKILL)


def test_a_process_someone_else_started_is_recorded_signalled_and_stopped(orphan: int) -> None:
    ref = ProcessRef.from_pid(orphan, log="/dev/null")
    assert ref.alive() and ref.started > 0
    restored = ProcessRef.from_dict(ref.to_dict())
    assert restored == ref and restored.alive()
    stop_all([restored], timeout=10)
    assert wait_gone([orphan]) == [] and not ref.alive()


def test_a_pid_with_another_start_time_is_never_signalled(orphan: int) -> None:
    someone_else = ProcessRef(orphan, ProcessRef.from_pid(orphan).started - 3600)
    assert not someone_else.alive()
    someone_else.signal(signal.SIGKILL)
    stop_all([someone_else], timeout=1)
    assert ProcessRef.from_pid(orphan).alive()


def test_a_pid_already_gone_is_never_alive() -> None:
    done = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True)
    assert not ProcessRef.from_pid(int(done.stdout)).alive()
