"""Wrong input to each `par` command: one line naming what was wrong and what to do, a
non-zero exit, no traceback and nothing left running or on disk."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..conftest import par_cli

BAD_ID = (
    "argument --cluster-id: invalid cluster id '../x': use letters, digits, '.', '_' or '-' "
    "(at most 64 characters, starting with a letter or digit)"
)
NO_IP = (
    "cannot listen on '999.1.1.1': No such device; give --ip an address of this machine "
    "(0.0.0.0: all of them)"
)
MISSING = (
    "connection file missing.json not found: start a cluster with `par start` or pass the "
    "path of an existing connection file"
)
CASES = [
    (["stop", "--cluster-id", "../x"], 2, f"par stop: error: {BAD_ID}"),
    (["engines", "-n", "1", "--cluster-id", "../x"], 2, f"par engines: error: {BAD_ID}"),
    (["start", "-n", "1", "--cluster-id", "../x"], 2, f"par start: error: {BAD_ID}"),
    (
        ["start", "-n", "1", "--ip", "999.1.1.1"],
        1,
        f"par start: error: the controller exited at start: par controller: error: {NO_IP}",
    ),
    (["controller", "--ip", "999.1.1.1"], 1, f"par controller: error: {NO_IP}"),
    (["controller", "--restore", "--file", "missing.json"], 1, f"par controller: error: {MISSING}"),
    (
        ["controller", "--heartbeat", "0"],
        2,
        "par controller: error: argument --heartbeat: '0' is not a positive number of seconds",
    ),
    (
        ["controller", "--hwm", "-1"],
        2,
        "par controller: error: argument --hwm: '-1' is not a whole number of at least 0",
    ),
    (
        ["start", "-n", "1", "--controller-arg=--bogus"],
        1,
        "par start: error: --controller-arg: unrecognized arguments: --bogus "
        "(`par controller --help` lists its arguments)",
    ),
    (
        ["start", "-n", "1", "--controller-arg=--heartbeat=0"],
        1,
        "par start: error: --controller-arg: argument --heartbeat: '0' is not a positive "
        "number of seconds (`par controller --help` lists its arguments)",
    ),
    (["engine", "--file", "missing.json"], 1, f"par engine: {MISSING}"),
]


@pytest.mark.parametrize(("args", "status", "error"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_wrong_input_is_one_line_that_says_what_to_do(
    args: list[str], status: int, error: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "PAR_HOME": str(home)}
    try:
        result = subprocess.run(
            par_cli(*args), capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
        )
    finally:  # input taken for good starts a cluster: leave nothing running
        subprocess.run(par_cli("stop", "--all"), capture_output=True, timeout=120, env=env)
    assert result.returncode == status
    assert "Traceback" not in result.stderr
    # argparse's usage lines come first, and `par start` says what it starts
    said = [line for line in result.stderr.splitlines() if not line.startswith(("usage", " "))]
    assert said[-1] == error, result.stderr
    clusters = home / "clusters"
    assert not clusters.exists() or list(clusters.iterdir()) == []  # nothing left behind
