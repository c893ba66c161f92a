"""The ``mpi`` engine launcher: a set of engines as the ranks of one ``mpiexec`` job."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, Self

from par.launcher import EngineSetLauncher, LaunchContext, Option

from .job import MPIJob
from .mpiexec import MPIExec, find_mpiexec, split_args

MPIEXEC_OPTION = Option(
    "mpiexec",
    str,
    "",
    "MPI launch command, e.g. 'mpiexec.openmpi' or 'srun --mpi=pmix' "
    "(default: the mpiexec beside the engines' Python, else mpiexec on PATH)",
)
MPI_ARGS_OPTION = Option(
    "mpi_args",
    str,
    "",
    "extra arguments for the MPI launch command, e.g. '-f hosts' (MPICH) or '--hostfile hosts'",
)


class MPIEngineSetLauncher(EngineSetLauncher):
    """Runs ``n`` engines as the ranks of one ``mpiexec`` job, so their code can use mpi4py.

    Engine ids follow rank order within the set, and each engine registers its
    ``rank`` and ``size`` (see ``Client.engines()``).
    """

    PLUGIN_NAME = "mpi"
    OPTIONS = (
        MPIEXEC_OPTION,
        MPI_ARGS_OPTION,
        Option(
            "oversubscribe",
            bool,
            True,
            "allow more ranks than cores (adds --oversubscribe for Open MPI; MPICH always does)",
        ),
        Option(
            "register_timeout",
            float,
            120.0,
            "seconds each rank keeps trying to register (raise it for hundreds of ranks per core)",
        ),
    )

    def __init__(self, context: LaunchContext, n: int = 1, **kwargs: Any) -> None:
        super().__init__(context, n=n, **kwargs)
        self.group = ""
        self.family = "unknown"
        self.job: MPIJob | None = None

    def _directory(self) -> Path:
        """Where this set's mpiexec and ranks keep their logs and records."""
        return self.context.cluster_dir / "logs" / self.group

    def engine_command(self) -> list[str]:
        """The command each rank runs: an engine that first joins MPI."""
        return [
            self.context.python,
            "-m",
            "par_launcher_mpi.engine",
            "--file",
            str(self.context.connection_file),
            "--group",
            self.group,
            "--size",
            str(self.n),
            "--dir",
            str(self._directory()),
            "--mpi",
            self.family,
            "--timeout",
            str(self.options["register_timeout"]),
            *(["--work-dir", self.work_dir] if self.work_dir else []),
        ]

    def start(self) -> None:
        """Start the mpiexec job; its ranks register with the controller on their own."""
        mpi: MPIExec = find_mpiexec(self.options["mpiexec"], self.context.python)
        # Unique per set, so the controller gives each set its own block of ids.
        self.group = f"mpi-{int(time.time() * 1000)}-{secrets.token_hex(3)}"
        self.family = mpi.family
        directory = self._directory()
        command = mpi.job_command(
            self.n,
            self.engine_command(),
            split_args(self.options["mpi_args"]),
            bool(self.options["oversubscribe"]),
        )
        self.job = MPIJob.start(command, directory, self.n, mpi.environment())

    def stop(self, timeout: float = 10.0) -> None:
        """End the whole mpiexec job and every rank of it."""
        if self.job is not None:
            self.job.stop(timeout)

    def signal(self, sig: int) -> None:
        """Send a signal to every rank on this host (for other hosts: ``Client.send_signal``)."""
        if self.job is not None:
            self.job.signal(sig)

    def running(self) -> bool:
        """True while the mpiexec job or any of its local ranks lives."""
        return self.job is not None and self.job.running()

    def output(self, lines: int = 20) -> str:
        """How the job ended (ranks that died, with status and last lines) or where it stands."""
        return self.job.report(lines) if self.job is not None else ""

    def to_dict(self) -> dict[str, Any]:
        """Options, engine count, group and the mpiexec job."""
        job = self.job.to_dict() if self.job is not None else None
        return {**super().to_dict(), "group": self.group, "family": self.family, "job": job}

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Restore from :meth:`to_dict` output (for ``par stop`` in another process)."""
        self = super().from_dict(context, data)
        self.group = str(data.get("group", ""))
        self.family = str(data.get("family", "unknown"))
        self.job = MPIJob.from_dict(data["job"]) if data.get("job") else None
        return self
