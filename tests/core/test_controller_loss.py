"""A controller that dies: nothing hangs, and a restored controller picks everyone back up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import par
import pytest


def start_controller(conn: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "par",
            "controller",
            "--cluster-id",
            "loss",
            "--file",
            str(conn),
            "--heartbeat",
            "0.3",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_dead_controller_fails_waiting_results_and_a_restored_one_resumes(
    tmp_path: Path,
) -> None:
    conn = tmp_path / "conn.json"
    ctl = start_controller(conn)
    engines = []
    try:
        rc = par.Client(conn, timeout=20, controller_timeout=3)
        engines = [
            subprocess.Popen(
                [sys.executable, "-m", "par.engine", "--file", str(conn)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        rc.wait_for_engines(2, timeout=30)
        ids_before = rc.ids
        ar = rc[0].apply_async(time.sleep, 6)  # the engine re-registers once this ends
        time.sleep(0.3)
        os.kill(ctl.pid, signal.SIGKILL)
        ctl.wait()
        t0 = time.monotonic()
        with pytest.raises(par.ControllerLost, match="restore"):
            ar.get(timeout=30)
        assert time.monotonic() - t0 < 10

        ctl = start_controller(conn, "--restore")
        deadline = time.monotonic() + 30
        while len(rc.ids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rc.ids == ids_before
        assert rc[:].apply_sync(lambda: "back") == ["back", "back"]
        rc.close()
    finally:
        for proc in [*engines, ctl]:
            proc.terminate()
            proc.wait(timeout=15)


def test_restore_without_a_connection_file_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "par",
            "controller",
            "--restore",
            "--file",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "not found" in result.stderr
