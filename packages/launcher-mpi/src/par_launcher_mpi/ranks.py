"""What each rank records in its job's directory, so its launcher can find it and say how it ended.

A rank writes ``rank-<r>.json`` (pid, host, group) when it starts and sends its
output to ``rank-<r>.log``. ``mpiexec`` puts every rank in its own session, so
these records (not a process group) are how ``stop`` reaches a rank that has
lost its ``mpiexec``.

Each rank's first process forks the engine and stays as its watcher
(:func:`watch`): it passes stop and interrupt signals on, waits, and writes
the engine's exit status to ``exit-<pid>`` (a shell can wait, but cannot
close the PMI socket :func:`watch` explains). mpiexec cannot say which rank
died first: when one dies it kills all the others with the same signal, and
its own report names whichever it noticed first.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# How a rank starts what it prints itself, so reports can pick its words out of mpiexec's log.
RANK_SAYS = "par mpi engine: "
SAID_FILE = "said.log"  # what ranks that failed at startup said, written by the ranks

# Seconds a watcher whose engine failed waits for the process manager to end the job.
JOB_END_WAIT = 10.0

# Signals the watcher passes on to the engine: how mpiexec and `par stop` end a rank.
PASSED_ON = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


def watch(directory: Path) -> int | None:
    """Fork: return None in the child, which goes on as the engine; in the parent, wait for
    the engine, record its exit status (128 + N when signal N killed it) and return it.

    MPICH's process manager learns that a rank died when the rank's PMI socket closes, and
    the watcher holds a copy. Closed only as the watcher exited, the manager sometimes
    noticed the exit first, took the rank for one that had ended normally and left the
    other ranks running. So after a failure the watcher closes the socket first, once the
    status is on disk, and waits for the manager to end the job.
    """
    pid = os.fork()
    if pid == 0:
        return None

    def pass_on(number: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # the engine has just ended
            os.kill(pid, number)

    for sig in PASSED_ON:
        signal.signal(sig, pass_on)
    _, wait_status = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(wait_status)
    status = 128 - status if status < 0 else status
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"exit-{pid}").write_text(str(status))
    pmi = os.environ.get("PMI_FD", "")
    if status and pmi.isdigit():
        os.close(int(pmi))
        time.sleep(JOB_END_WAIT)
    return status


def describe_status(status: int) -> str:
    """An exit status as a person reads it."""
    if status > 128:
        try:
            name = signal.Signals(status - 128).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by signal {status - 128} ({name})"
    return f"exited with status {status}"


def exit_statuses(directory: Path) -> dict[int, tuple[float, int]]:
    """(time, exit status) of each rank that has ended, by pid."""
    found = {}
    for path in directory.glob("exit-*"):
        try:
            found[int(path.name[5:])] = (path.stat().st_mtime, int(path.read_text()))
        except (OSError, ValueError):
            continue  # being written right now: the next look will see it
    return found


@dataclass(frozen=True)
class RankRecord:
    """One rank of an MPI job, as the rank itself recorded it."""

    rank: int
    pid: int
    host: str
    group: str

    @staticmethod
    def log_path(directory: Path, rank: int) -> Path:
        """Where rank ``rank`` of the job in ``directory`` writes its output."""
        return directory / f"rank-{rank}.log"

    def write(self, directory: Path) -> None:
        """Record this rank (atomically, so a reader never sees half a file)."""
        path = directory / f"rank-{self.rank}.json"
        tmp = path.with_name(f".{path.name}.{self.pid}.tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def read_all(cls, directory: Path) -> list[RankRecord]:
        """Every rank recorded in ``directory``, in rank order."""
        records = []
        for path in directory.glob("rank-*.json"):
            try:
                records.append(cls(**json.loads(path.read_text())))
            except (OSError, ValueError, TypeError):
                continue  # not a record of this version: nothing to act on
        return sorted(records, key=lambda r: r.rank)
