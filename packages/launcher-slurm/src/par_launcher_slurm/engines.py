"""The ``slurm`` engine launcher: n engines as the tasks of one batch job.

One job with ``--ntasks=n`` whose script runs ``srun`` once: ``scancel`` of
that one job id stops every engine, ``scancel --signal`` reaches every
engine, and a killed engine does not take the others down
(``--kill-on-bad-exit=0``, ``--wait=0``).
"""

from __future__ import annotations

import shlex

from par.launcher import EngineSetLauncher, Option

from .job import SlurmJobLauncher
from .options import BATCH_OPTIONS, batch_directives, render_script

# Run by each task: tell the engine which Slurm task it is, then become the engine
# (exec keeps the PID, so the engine's reported PID is the task's).
TASK_WRAPPER = (
    r'export PAR_ENGINE_INFO="{\"slurm_job_id\": $SLURM_JOB_ID, '
    r'\"slurm_task\": $SLURM_PROCID, \"slurm_node\": \"$SLURMD_NODENAME\"}"; exec "$@"'
)


class SlurmEngineSetLauncher(SlurmJobLauncher, EngineSetLauncher):
    """Runs ``n`` engines as the ``n`` tasks of one Slurm job."""

    PLUGIN_NAME = "slurm"
    JOB_KIND = "engines"
    OPTIONS = (
        *BATCH_OPTIONS,
        Option("cpus_per_task", int, 1, "CPUs for each engine (threads its code may use)"),
        Option("srun_args", str, "", "more srun options for the engines, e.g. '--mpi=pmi2'"),
    )

    def srun_command(self) -> list[str]:
        """The ``srun`` command line that runs the engines inside the job."""
        cpus = int(self.options["cpus_per_task"])
        return [
            "srun",
            "--label",
            "--kill-on-bad-exit=0",
            "--wait=0",
            *([f"--cpus-per-task={cpus}"] if cpus > 1 else []),
            *shlex.split(str(self.options["srun_args"])),
            "/bin/sh",
            "-c",
            TASK_WRAPPER,
            "par-engine",
            *self.engine_command(),
        ]

    def job_script(self) -> str:
        """The batch script for the engines, without submitting it."""
        directives = batch_directives(
            self.options,
            job_name=self._job_name(),
            ntasks=self.n,
            output=self._output_pattern(),
            cpus_per_task=int(self.options["cpus_per_task"]),
        )
        return render_script(directives, str(self.options["prologue"]), self.srun_command())

    def start(self) -> None:
        """Submit the engines' job; they register with the controller once it runs."""
        self._submit()
