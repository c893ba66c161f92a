"""The ``slurm`` controller launcher: ``par controller`` as a one-task batch job.

The controller writes the connection file under ``$PAR_HOME``, which the
login node and the compute nodes must share (as home directories usually
are); ``start`` returns once that file appears.
"""

from __future__ import annotations

import time

from par.launcher import ControllerLauncher, LauncherError, Option

from .job import SlurmJobLauncher
from .options import BATCH_OPTIONS, batch_directives, render_script


class SlurmControllerLauncher(SlurmJobLauncher, ControllerLauncher):
    """Runs the controller as a one-task Slurm job."""

    PLUGIN_NAME = "slurm"
    JOB_KIND = "controller"
    OPTIONS = (
        *BATCH_OPTIONS,
        Option(
            "ip", str, "0.0.0.0", "address the controller listens on (all: other nodes reach it)"
        ),
        Option("location", str, "", "host name engines and clients use ('': the node's name)"),
        Option(
            "start_timeout",
            float,
            300.0,
            "seconds to wait for the job to start and write the connection file",
        ),
    )

    def job_script(self) -> str:
        """The batch script for the controller, without submitting it."""
        command = [*self.controller_command(), "--ip", str(self.options["ip"])]
        if self.options["location"]:
            command += ["--location", str(self.options["location"])]
        directives = batch_directives(
            self.options, job_name=self._job_name(), ntasks=1, output=self._output_pattern()
        )
        return render_script(
            directives, str(self.options["prologue"]), ["srun", "--ntasks=1", *command]
        )

    def start(self) -> None:
        """Submit the controller's job and wait until it has written the connection file."""
        self.context.connection_file.unlink(missing_ok=True)
        self._submit()
        timeout = float(self.options["start_timeout"])
        deadline = time.monotonic() + timeout
        while not self.context.connection_file.exists():
            if not self.running():
                raise LauncherError(
                    f"the controller's job ended before writing {self.context.connection_file}; "
                    f"{self.output()}"
                )
            if time.monotonic() > deadline:
                raise LauncherError(
                    f"the controller did not write {self.context.connection_file} within "
                    f"{timeout:g} s (raise --start-timeout if the queue is slow); {self.output()}"
                )
            time.sleep(0.1)
