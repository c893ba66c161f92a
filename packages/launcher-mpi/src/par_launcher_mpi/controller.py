"""The ``mpi`` controller launcher: ``par controller`` as a one-rank ``mpiexec`` job.

For sites where every process of a job must run under the MPI launcher
(inside a batch allocation, on the first host of a hostfile).
"""

from __future__ import annotations

from typing import Any, Self

from par.launcher import ControllerLauncher, LaunchContext, Option

from .engines import MPI_ARGS_OPTION, MPIEXEC_OPTION
from .job import MPIJob
from .mpiexec import find_mpiexec, split_args


class MPIControllerLauncher(ControllerLauncher):
    """Runs the controller as the single rank of an ``mpiexec`` job."""

    PLUGIN_NAME = "mpi"
    OPTIONS = (
        MPIEXEC_OPTION,
        MPI_ARGS_OPTION,
        Option("ip", str, "127.0.0.1", "address the controller listens on ('0.0.0.0': all)"),
        Option("location", str, "", "host name engines use to reach the controller (with 0.0.0.0)"),
        Option("start_timeout", float, 30.0, "seconds to wait for the controller to come up"),
    )

    def __init__(self, context: LaunchContext, **kwargs: Any) -> None:
        super().__init__(context, **kwargs)
        self.job: MPIJob | None = None

    def start(self) -> None:
        """Start the controller job and wait for its connection file."""
        mpi = find_mpiexec(self.options["mpiexec"], self.context.python)
        program = [*self.controller_command(), "--ip", str(self.options["ip"])]
        if self.options["location"]:
            program += ["--location", str(self.options["location"])]
        command = mpi.job_command(1, program, split_args(self.options["mpi_args"]), False)
        self.context.connection_file.unlink(missing_ok=True)
        directory = self.context.cluster_dir / "logs" / "mpi-controller"
        self.job = job = MPIJob.start(command, directory, 1, mpi.environment())
        self.wait_for_connection_file(job.running, float(self.options["start_timeout"]))

    def stop(self, timeout: float = 10.0) -> None:
        """End the controller's mpiexec job."""
        if self.job is not None:
            self.job.stop(timeout)

    def signal(self, sig: int) -> None:
        """Signal the controller's mpiexec (which passes signals on to its rank)."""
        if self.job is not None and self.job.process is not None:
            self.job.process.signal(sig)

    def running(self) -> bool:
        """True while the controller's mpiexec job lives."""
        return self.job is not None and self.job.running()

    def output(self, lines: int = 20) -> str:
        """The controller's last output (it shares mpiexec's log)."""
        return self.job.report(lines) if self.job is not None else ""

    def to_dict(self) -> dict[str, Any]:
        """Options and the mpiexec job."""
        return {**super().to_dict(), "job": self.job.to_dict() if self.job is not None else None}

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Restore from :meth:`to_dict` output."""
        self = cls(context, **data.get("options", {}))
        self.job = MPIJob.from_dict(data["job"]) if data.get("job") else None
        return self
