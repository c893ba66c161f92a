"""The options every Slurm launcher takes, and the ``#SBATCH`` lines they become."""

from __future__ import annotations

import shlex
from typing import Any

from par.launcher import Option

from .commands import SlurmCommands

BATCH_OPTIONS = (
    Option("partition", str, "", "partition to submit to ('': the default partition)"),
    Option("account", str, "", "account to charge the job to"),
    Option("qos", str, "", "quality of service of the job"),
    Option("time_limit", str, "", "job time limit, e.g. 2:00:00 ('': the partition's)"),
    Option(
        "overcommit",
        bool,
        False,
        "allow more tasks than CPUs (sbatch --overcommit); without it such a job pends",
    ),
    Option("extra", str, "", "more sbatch options, e.g. '--mem=4G --constraint=gpu'"),
    Option("prologue", str, "", "shell lines run first in the job, e.g. 'module load python'"),
    Option("sbatch", str, "sbatch", "command that submits jobs"),
    Option("scancel", str, "scancel", "command that cancels and signals jobs"),
    Option("squeue", str, "squeue", "command that reports job states"),
    Option("slurm_timeout", float, 30.0, "seconds to wait for any Slurm command to answer"),
)


def slurm_commands(options: dict[str, Any]) -> SlurmCommands:
    """The Slurm commands a launcher's options name."""
    return SlurmCommands(
        sbatch=str(options["sbatch"]),
        scancel=str(options["scancel"]),
        squeue=str(options["squeue"]),
        timeout=float(options["slurm_timeout"]),
    )


def extra_directives(extra: str) -> list[str]:
    """Split ``--extra`` into sbatch options; a word without a dash is the previous one's value."""
    out: list[str] = []
    for word in shlex.split(extra):
        if word.startswith("-") or not out:
            out.append(word)
        else:
            out[-1] += f" {word}"
    return out


def batch_directives(
    options: dict[str, Any], *, job_name: str, ntasks: int, output: str, cpus_per_task: int = 1
) -> list[str]:
    """The sbatch options of a job, in ``#SBATCH`` order (``extra`` last, so it can override)."""
    out = [f"--job-name={job_name}", f"--ntasks={ntasks}", f"--output={output}"]
    if cpus_per_task > 1:
        out.append(f"--cpus-per-task={cpus_per_task}")
    for name, flag in (
        ("partition", "--partition"),
        ("account", "--account"),
        ("qos", "--qos"),
        ("time_limit", "--time"),
    ):
        if options[name]:
            out.append(f"{flag}={options[name]}")
    if options["overcommit"]:
        out.append("--overcommit")
    return out + extra_directives(str(options["extra"]))


def render_script(directives: list[str], prologue: str, command: list[str]) -> str:
    """A batch script: the ``#SBATCH`` lines, the prologue, then ``exec`` of the command."""
    lines = ["#!/bin/sh", *(f"#SBATCH {d}" for d in directives), ""]
    if prologue.strip():
        lines += [prologue.strip(), ""]
    lines.append("exec " + shlex.join(command))
    return "\n".join(lines) + "\n"
