"""``par monitor`` from the command line, without a cluster."""

from __future__ import annotations

import subprocess

import pytest
from par_tui.cli import main

from ..conftest import par_cli


def test_no_cluster_says_so_and_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--cluster-id", "nothing-here"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("par monitor: error: no cluster 'nothing-here' is running")


def test_par_monitor_command_without_cluster() -> None:
    out = subprocess.run(
        par_cli("monitor", "--cluster-id", "nothing-here"), capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "no cluster 'nothing-here' is running" in out.stderr


def test_bad_refresh_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--refresh", "0"])
    assert exc.value.code == 2
