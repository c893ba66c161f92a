"""Slurm's commands (``sbatch``, ``scancel``, ``squeue``), each run with a time limit.

A hung ``slurmctld`` must never hang par, so every call has a timeout and
every failure becomes a one-line :class:`~par.launcher.LauncherError`.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from par.launcher import LauncherError

# States in which a job still holds (or waits for) its allocation; the rest are final.
ALIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "STOPPED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "RESV_DEL_HOLD",
    }
)

# What scancel says about a job that has already ended: not an error when stopping it.
_GONE = ("Invalid job id", "already completing or completed")


@dataclass(frozen=True)
class JobStatus:
    """A job's state and pending reason as ``squeue`` reports them."""

    state: str
    reason: str

    @property
    def alive(self) -> bool:
        """True while the job is queued, running or still cleaning up."""
        return self.state in ALIVE_STATES

    def __str__(self) -> str:
        return self.state if self.reason in ("", "None") else f"{self.state} ({self.reason})"


@dataclass(frozen=True)
class SlurmCommands:
    """How to reach Slurm: the command names (may include arguments) and their time limit."""

    sbatch: str = "sbatch"
    scancel: str = "scancel"
    squeue: str = "squeue"
    timeout: float = 30.0

    def _run(self, option: str, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [*shlex.split(getattr(self, option)), *args]
        try:
            return subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self.timeout,
            )
        except FileNotFoundError:
            raise LauncherError(
                f"{argv[0]!r} not found: install Slurm's client commands "
                f"(Debian/Ubuntu: apt-get install slurm-client) or name it with --{option}"
            )
        except subprocess.TimeoutExpired:
            raise LauncherError(
                f"`{shlex.join(argv)}` did not answer within {self.timeout:g} s: "
                "check that slurmctld is up (`sinfo`), or raise --slurm-timeout"
            )

    def submit(self, script: Path) -> str:
        """Submit a job script with ``sbatch``; return the job id."""
        result = self._run("sbatch", "--parsable", str(script))
        message = _message(result.stderr)
        if result.returncode != 0:
            raise LauncherError(f"Slurm refused the job in {script}: {message or 'no message'}")
        job_id = result.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise LauncherError(f"sbatch printed no job id (stdout {result.stdout!r}): {message}")
        return job_id

    def cancel(self, job_id: str, signal: str | None = None, full: bool = False) -> None:
        """Cancel a job, or send it ``signal`` (``full``: to its batch shell too)."""
        args = [f"--signal={signal}"] if signal else []
        if full:
            args.append("--full")
        result = self._run("scancel", *args, job_id)
        message = _message(result.stderr)
        if result.returncode != 0 and not any(gone in message for gone in _GONE):
            raise LauncherError(f"scancel {job_id} failed: {message or 'no message'}")

    def status(self, job_id: str) -> JobStatus | None:
        """The job's state, or None once Slurm has forgotten it."""
        result = self._run(
            "squeue", "--noheader", "--states=all", "--format=%T|%r", f"--jobs={job_id}"
        )
        message = _message(result.stderr)
        if result.returncode != 0:
            if "Invalid job id" in message:
                return None
            raise LauncherError(f"squeue could not report job {job_id}: {message or 'no message'}")
        line = result.stdout.strip().splitlines()[:1]
        if not line:
            return None
        state, _, reason = line[0].partition("|")
        return JobStatus(state.strip(), reason.strip())


def _message(stderr: str) -> str:
    """Slurm's error lines as one line, without the repeated ``sbatch: error:`` prefixes."""
    lines = [line.split("error:", 1)[-1].strip() for line in stderr.splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines))
