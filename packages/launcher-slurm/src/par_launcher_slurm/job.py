"""One submitted Slurm job, and the launcher behaviour every Slurm launcher shares.

A launcher owns at most one job: stopping it is one ``scancel``, signalling
it is one ``scancel --signal``, and its state is one ``squeue`` call, cached
briefly because par asks ``running()`` several times a second while it waits.
"""

from __future__ import annotations

import logging
import signal as signals
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from par.launcher import LaunchContext, Launcher
from par.process import tail

from .commands import JobStatus, SlurmCommands
from .options import slurm_commands

log = logging.getLogger("par_launcher_slurm")

STATUS_MAX_AGE = 1.0  # seconds a squeue answer is reused
KILL_GRACE = 10.0  # seconds to wait after SIGKILL before giving up on a job


@dataclass
class SlurmJob:
    """A batch job par submitted: its id, its output file, and how to reach Slurm."""

    job_id: str
    output_file: Path
    commands: SlurmCommands
    _status: JobStatus | None = field(default=None, repr=False)
    _checked: float = field(default=float("-inf"), repr=False)

    @classmethod
    def submit(cls, script: Path, output_pattern: str, commands: SlurmCommands) -> SlurmJob:
        """Submit ``script``; its ``--output`` is ``output_pattern`` (``%j``: the job id)."""
        job_id = commands.submit(script)
        return cls(job_id, Path(output_pattern.replace("%j", job_id)), commands)

    def status(self, max_age: float = STATUS_MAX_AGE) -> JobStatus | None:
        """The job's state, asking ``squeue`` if the last answer is older than ``max_age``."""
        if time.monotonic() - self._checked > max_age:
            self._status = self.commands.status(self.job_id)
            self._checked = time.monotonic()
        return self._status

    def alive(self, max_age: float = STATUS_MAX_AGE) -> bool:
        """True while the job is pending, running or still cleaning up."""
        status = self.status(max_age)
        return status is not None and status.alive

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.alive(max_age=0):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)
        return True

    def cancel(self, timeout: float) -> None:
        """Cancel the job and wait for it to end; kill it if it outlives ``timeout``."""
        self.commands.cancel(self.job_id)
        if self._wait_gone(timeout):
            return
        self.commands.cancel(self.job_id, signal="KILL", full=True)
        if not self._wait_gone(KILL_GRACE):
            log.warning("Slurm job %s is still %s after scancel", self.job_id, self.status())

    def signal(self, sig: int) -> None:
        """Send a signal to the job's tasks (not to the batch shell)."""
        self.commands.cancel(self.job_id, signal=signals.Signals(sig).name.removeprefix("SIG"))

    def describe(self, lines: int = 20) -> str:
        """The job's state and the last lines of its output file."""
        status = self.status()
        text = f"Slurm job {self.job_id} is {status or 'gone from squeue'}"
        if status is not None and status.state == "PENDING":
            text += (
                f" (`squeue -j {self.job_id}` says why; on a machine with fewer CPUs "
                "than tasks, add --overcommit)"
            )
        output = tail(self.output_file, lines)
        if output:
            return f"{text}; {self.output_file}:\n{output}"
        return f"{text}; {self.output_file} is empty" if status else f"{text}; no output yet"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the commands come back from the launcher's options)."""
        return {"job_id": self.job_id, "output_file": str(self.output_file)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], commands: SlurmCommands) -> SlurmJob:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["job_id"]), Path(data["output_file"]), commands)


class SlurmJobLauncher(Launcher):
    """Lifecycle shared by Slurm launchers: each runs as one job, built by ``job_script()``."""

    JOB_KIND: str = ""  # "engines" or "controller": names the job and its files

    def __init__(self, context: LaunchContext, **options: Any) -> None:
        super().__init__(context, **options)
        self.job: SlurmJob | None = None

    def job_script(self) -> str:
        """The batch script this launcher submits, without submitting it."""
        raise NotImplementedError

    def _logs(self) -> Path:
        return self.context.cluster_dir / "logs"

    def _output_pattern(self) -> str:
        return str(self._logs() / f"slurm-{self.JOB_KIND}-%j.out")

    def _job_name(self) -> str:
        return f"par-{self.JOB_KIND}-{self.context.cluster_id}"

    def _submit(self) -> None:
        """Write the job script next to the logs (for the user to read) and submit it."""
        self._logs().mkdir(parents=True, exist_ok=True)
        script = self._logs() / f"slurm-{self.JOB_KIND}-{int(time.time() * 1000)}.sh"
        script.write_text(self.job_script())
        self.job = SlurmJob.submit(script, self._output_pattern(), slurm_commands(self.options))
        self.emit("submitted", job_id=self.job.job_id, script=str(script))

    def stop(self, timeout: float = 10.0) -> None:
        """Cancel the job (one ``scancel``) and wait for its tasks to end."""
        if self.job is not None:
            self.job.cancel(timeout)

    def signal(self, sig: int) -> None:
        """Send a signal to every task of the job."""
        if self.job is not None:
            self.job.signal(sig)

    def running(self) -> bool:
        """True while the job is pending or running, as ``squeue`` says."""
        return self.job is not None and self.job.alive()

    def output(self, lines: int = 20) -> str:
        """The job's state and the end of its output file."""
        return self.job.describe(lines) if self.job is not None else ""

    def to_dict(self) -> dict[str, Any]:
        """Options, plus the job id and output file so another process can cancel the job."""
        return {**super().to_dict(), "job": self.job.to_dict() if self.job else None}

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Rebuild the launcher and the job it submitted from :meth:`to_dict` output."""
        self = super().from_dict(context, data)
        if data.get("job"):
            self.job = SlurmJob.from_dict(data["job"], slurm_commands(self.options))
        return self
