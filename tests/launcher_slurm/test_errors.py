"""The slurm launcher's failures are one clear error that says what happened and what to do."""

from __future__ import annotations

import subprocess

import par
import pytest
from par.errors import ClusterError
from par.launcher import LauncherError

from ..conftest import par_cli


def test_an_unknown_partition_shows_slurms_message() -> None:
    cluster = par.Cluster(n=1, engines="slurm", partition="nope")
    with pytest.raises(LauncherError, match=r"Slurm refused the job .*invalid partition.*nope"):
        cluster.start_and_connect_sync()


def test_an_unknown_partition_on_the_command_line_is_one_line() -> None:
    result = subprocess.run(
        par_cli("start", "--launcher", "slurm", "-n", "1", "--partition", "nope"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("par start: error: Slurm refused the job")
    assert "invalid partition specified: nope" in line


def test_a_missing_sbatch_says_what_to_install() -> None:
    cluster = par.Cluster(n=1, engines="slurm", sbatch="par-no-such-sbatch")
    with pytest.raises(LauncherError, match="'par-no-such-sbatch' not found: install Slurm's"):
        cluster.start_and_connect_sync()


def test_a_job_that_fails_before_the_engines_register_shows_its_output() -> None:
    cluster = par.Cluster(
        n=2, engines="slurm", prologue="echo 'module python: not found' >&2; exit 3"
    )
    with pytest.raises(ClusterError) as info:
        cluster.start_and_connect_sync()
    message = str(info.value)
    assert "engines exited before registering" in message
    assert "module python: not found" in message
    assert "slurm-engines-" in message  # names the output file to read


def test_a_job_that_cannot_be_placed_says_it_pends_and_suggests_overcommit() -> None:
    # Three tasks on the 2-CPU node: Slurm keeps the job PENDING instead of refusing it.
    cluster = par.Cluster(n=3, engines="slurm", engine_timeout=8)
    with pytest.raises(ClusterError, match=r"(?s)0 of 3 engines.*PENDING.*--overcommit"):
        cluster.start_and_connect_sync()
