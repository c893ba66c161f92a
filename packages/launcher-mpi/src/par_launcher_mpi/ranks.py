"""What each rank records in its job's directory, so its launcher can find it and say how it ended.

A rank writes ``rank-<r>.json`` (pid, host, group) when it starts and sends its
output to ``rank-<r>.log``. ``mpiexec`` puts every rank in its own session, so
these records (not a process group) are how ``stop`` reaches a rank that has
lost its ``mpiexec``.

Each rank runs under :data:`WATCH_SCRIPT`, a few lines of ``sh`` that wait for
the engine and write its exit status to ``exit-<pid>``. mpiexec cannot say
which rank died first: when one dies it kills all the others with the same
signal, and its own report names whichever it noticed first.
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

# How a rank starts what it prints itself, so reports can pick its words out of mpiexec's log.
RANK_SAYS = "par mpi engine: "
SAID_FILE = "said.log"  # what ranks that failed at startup said, written by the ranks

# sh -c WATCH_SCRIPT par-rank DIRECTORY PROGRAM...: run PROGRAM, pass stop and interrupt
# signals on to it, and record its exit status (128 + N when signal N killed it).
WATCH_SCRIPT = """
dir=$1; shift
"$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM HUP
trap 'kill -INT $pid 2>/dev/null' INT
while :; do
  wait $pid
  status=$?
  kill -0 $pid 2>/dev/null || break
done
echo $status > "$dir/exit-$pid"
exit $status
"""


def watched(directory: Path, program: list[str]) -> list[str]:
    """The command that runs ``program`` as a rank under :data:`WATCH_SCRIPT`."""
    return ["sh", "-c", WATCH_SCRIPT, "par-rank", str(directory), *program]


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
