"""What a user of the plugin sees on the command line: `par launchers` lists it, and a wrong
option value is one line that fails before any process starts."""

from __future__ import annotations

import subprocess
import sys

import par
import pytest
from par.launcher import LauncherError


def par_command(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``par`` with this interpreter, as a user would."""
    command = [sys.executable, "-m", "par", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_par_launchers_lists_the_plugin_its_package_version_and_options(par_home: str) -> None:
    result = par_command("launchers")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert ["example", "engines", "par-example-launcher", "0.1.0", "--nice", "--env"] in rows


def test_a_wrong_option_value_is_one_line_on_the_command_line(par_home: str) -> None:
    result = par_command("start", "--launcher", "example", "-n", "1", "--env", "NOEQUALS")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "par start: error: --env: 'NOEQUALS' is not NAME=VALUE; write e.g. 'OMP_NUM_THREADS=1'"
    )


def test_a_wrong_option_value_fails_before_the_controller_starts(par_home: str) -> None:
    cluster = par.Cluster(n=1, engines="example", nice=40)
    with pytest.raises(LauncherError, match="--nice must be between 0 and 19, not 40"):
        cluster.start_cluster_sync()
    assert cluster.controller is None
