"""`par start --launcher slurm` and `par stop` from the command line, as a user runs them."""

from __future__ import annotations

import subprocess

import par

from ..conftest import par_cli
from .local_slurm import LocalSlurm


def _par(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(par_cli(*args), capture_output=True, text=True, timeout=timeout)


def test_par_launchers_lists_the_slurm_launchers() -> None:
    result = _par("launchers", timeout=60)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("slurm ")]
    assert [row[:4] for row in rows] == [
        ["slurm", "controller", "par-launcher-slurm", "0.1.0"],
        ["slurm", "engines", "par-launcher-slurm", "0.1.0"],
    ]
    assert {"--partition", "--overcommit", "--extra"} <= set(rows[1][4:])


def test_start_daemonized_then_stop_leaves_no_job(slurm: LocalSlurm) -> None:
    cluster_id = "slurm-cli"
    # A controller task and two engine tasks on a 2-CPU node: --overcommit lets them share.
    start = _par(
        "start", "--launcher", "slurm", "-n", "2", "--daemonize", "--overcommit",
        "--cluster-id", cluster_id, "--engine-timeout", "120",
    )  # fmt: skip
    try:
        assert start.returncode == 0, start.stderr
        assert "is up with 2 engines" in start.stdout
        names = sorted(line.split()[1] for line in slurm.jobs())
        assert names == [f"par-controller-{cluster_id}", f"par-engines-{cluster_id}"]
        rc = par.Client(cluster_id=cluster_id)
        try:
            assert rc[:].apply_sync(sum, [1, 2]) == [3, 3]
        finally:
            rc.close()
    finally:
        stop = _par("stop", "--cluster-id", cluster_id)
    assert stop.returncode == 0, stop.stderr
    assert slurm.wait_no_jobs(30) == []
