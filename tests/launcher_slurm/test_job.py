"""The job the slurm launcher submits: previewed by job_script(), and exactly that is submitted."""

from __future__ import annotations

from pathlib import Path

from par.launcher import LaunchContext
from par.testing import ClusterFactory
from par_launcher_slurm import SlurmControllerLauncher, SlurmEngineSetLauncher

from .local_slurm import LocalSlurm


def _directives(script: str) -> list[str]:
    return [line.removeprefix("#SBATCH ") for line in script.splitlines() if line[:7] == "#SBATCH"]


def test_job_script_previews_the_engines_job_without_submitting(
    slurm: LocalSlurm, tmp_path: Path
) -> None:
    context = LaunchContext("preview", tmp_path, tmp_path / "connection.json")
    engines = SlurmEngineSetLauncher(
        context,
        n=4,
        partition="debug",
        account="physics",
        qos="normal",
        time_limit="0:10:00",
        overcommit=True,
        extra="--mem=1G -C haswell",
        prologue="module load python",
        cpus_per_task=2,
    )
    script = engines.job_script()
    assert script.startswith("#!/bin/sh\n")
    assert _directives(script) == [
        "--job-name=par-engines-preview",
        "--ntasks=4",
        f"--output={tmp_path}/logs/slurm-engines-%j.out",
        "--cpus-per-task=2",
        "--partition=debug",
        "--account=physics",
        "--qos=normal",
        "--time=0:10:00",
        "--overcommit",
        "--mem=1G",
        "-C haswell",
    ]
    body = script.split("\n\n", 1)[1]
    assert body.startswith("module load python\n")
    last = script.splitlines()[-1]
    assert last.startswith("exec srun --label --kill-on-bad-exit=0 --wait=0 --cpus-per-task=2 ")
    assert last.endswith(f"-m par.engine --file {tmp_path}/connection.json")
    assert slurm.jobs() == [], "job_script() submitted a job"


def test_controller_job_script_runs_one_controller_task(tmp_path: Path) -> None:
    context = LaunchContext("preview", tmp_path, tmp_path / "connection.json")
    script = SlurmControllerLauncher(context, partition="debug").job_script()
    assert _directives(script)[:2] == ["--job-name=par-controller-preview", "--ntasks=1"]
    assert "--partition=debug" in _directives(script)
    assert script.splitlines()[-1].startswith("exec srun --ntasks=1 ")
    assert "-m par.controller --cluster-id preview" in script
    assert script.rstrip().endswith("--ip 0.0.0.0")


def test_the_submitted_script_is_the_preview_and_engines_know_their_task(
    par_cluster: ClusterFactory, slurm: LocalSlurm
) -> None:
    cluster, rc = par_cluster(2, engines="slurm", partition="debug", engine_timeout=90)
    (engines,) = cluster.engines.values()
    assert isinstance(engines, SlurmEngineSetLauncher) and engines.job is not None
    (submitted,) = (cluster.context.cluster_dir / "logs").glob("slurm-engines-*.sh")
    assert submitted.read_text() == engines.job_script()
    job_id = int(engines.job.job_id)
    assert [line.split()[:2] for line in slurm.jobs()] == [
        [str(job_id), f"par-engines-{cluster.cluster_id}"]
    ]
    infos = [e["info"] for e in rc.engines().values()]
    assert sorted(i["slurm_task"] for i in infos) == [0, 1]
    assert {(i["slurm_job_id"], i["slurm_node"]) for i in infos} == {(job_id, "localhost")}
