"""Finding ``mpiexec``, telling which MPI it belongs to, and the flags and variables it needs."""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from par.launcher import LauncherError

INSTALL_HINT = (
    "install an MPI (`pip install mpich`, or `apt-get install openmpi-bin`) "
    "or name one with --mpiexec PATH (mpiexec=PATH in Python)"
)

# Open MPI refuses to run as root unless told twice that it is meant.
OPENMPI_ROOT_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def family(text: str) -> str:
    """The MPI family a version text names: 'mpich', 'openmpi', 'intel', 'slurm' or 'unknown'.

    Works on ``mpiexec --version`` output and on ``MPI.Get_library_version()``.
    """
    low = text.lower()
    if "open mpi" in low or "openrte" in low or "prterun" in low or "prrte" in low:
        return "openmpi"
    if "intel(r) mpi" in low:
        return "intel"
    if "hydra" in low or "mpich" in low:
        return "mpich"
    if "slurm" in low:
        return "slurm"
    return "unknown"


def compatible(launcher_family: str, library_family: str) -> bool:
    """False only when a launcher of one known MPI starts ranks linked to another."""
    abi = {"mpich": "mpich", "intel": "mpich", "openmpi": "openmpi"}
    a, b = abi.get(launcher_family), abi.get(library_family)
    return a is None or b is None or a == b


def split_args(value: str | Sequence[str]) -> list[str]:
    """Arguments from a shell-like string (``"-f hosts -ppn 4"``) or a list."""
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


@dataclass(frozen=True)
class MPIExec:
    """An MPI launch command and the MPI implementation it belongs to."""

    command: tuple[str, ...]
    family: str

    def job_command(
        self, n: int, program: Sequence[str], extra_args: Sequence[str], oversubscribe: bool
    ) -> list[str]:
        """The full command that runs ``program`` as ``n`` ranks."""
        flags = ["--oversubscribe"] if oversubscribe and self.family == "openmpi" else []
        return [*self.command, *extra_args, *flags, "-n", str(n), *program]

    def environment(self) -> dict[str, str]:
        """Variables this MPI needs in order to start here."""
        if self.family == "openmpi" and os.geteuid() == 0:
            return dict(OPENMPI_ROOT_ENV)
        return {}


def _default_command(python: str) -> str:
    # The mpiexec installed beside the engines' Python (a venv with the `mpich` wheel)
    # matches the MPI its mpi4py was installed with; PATH may hold another MPI's.
    beside = Path(python).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise LauncherError(f"mpiexec not found next to {python} nor on PATH: {INSTALL_HINT}")
    return found


@functools.lru_cache(maxsize=16)
def _detect_family(command: tuple[str, ...]) -> str:
    try:
        done = subprocess.run(
            [*command, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **OPENMPI_ROOT_ENV},
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise LauncherError(f"cannot run {command[0]!r} ({exc.strerror}): {INSTALL_HINT}")
    except subprocess.TimeoutExpired:
        raise LauncherError(f"`{shlex.join(command)} --version` did not answer within 30 s")
    return family(done.stdout + done.stderr)


def find_mpiexec(mpiexec: str, python: str) -> MPIExec:
    """Resolve the ``mpiexec`` option (a command, possibly with arguments) and identify its MPI."""
    command = split_args(mpiexec) or [_default_command(python)]
    if os.sep not in command[0]:
        found = shutil.which(command[0])
        if found is None:
            raise LauncherError(f"{command[0]!r} not found on PATH: {INSTALL_HINT}")
        command[0] = found
    return MPIExec(tuple(command), _detect_family(tuple(command)))
