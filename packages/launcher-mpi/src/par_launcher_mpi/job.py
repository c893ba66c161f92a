"""One ``mpiexec`` job: start it, find its ranks, signal them, stop all of it, say how it ended."""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from par.process import ProcessRef, spawn, stop_all, tail

from .ranks import RANK_SAYS, SAID_FILE, RankRecord, describe_status, exit_statuses

# Seconds ranks that outlived their mpiexec get between SIGTERM and SIGKILL.
ORPHAN_GRACE = 3.0

# The line of dashes above and below each of Open MPI's help messages.
HELP_RULE = re.compile(r"-{20,}")


def _indent(text: str) -> str:
    # Open MPI's launcher writes a NUL after some messages: keep it out of reports.
    text = text.replace("\0", "")
    return "\n".join("  " + line for line in text.splitlines()) or "  (no output)"


def _mpiexec_output(log: Path, lines: int) -> str:
    """The last ``lines`` lines of mpiexec's log, made to say why the job failed.

    Ranks complain there before they open their own log (a wrong mpi4py), and
    Open MPI's messages run long: a bare tail would show the end of its
    explanations. So the tail starts at the top of a message it would cut,
    and is preceded by the ranks' complaints it does not hold.
    """
    rows = tail(log, lines * 10).replace("\0", "").splitlines()
    start = max(len(rows) - lines, 0)
    rules = [i for i, row in enumerate(rows) if HELP_RULE.fullmatch(row.strip())]
    for opening, closing in zip(rules[::2], rules[1::2], strict=False):
        if opening < start <= closing:
            start = max(opening, len(rows) - 3 * lines)
    said = [row for row in dict.fromkeys(rows[:start]) if row.startswith(RANK_SAYS)]
    return "\n".join(said[-3:] + rows[start:])


class MPIJob:
    """A started ``mpiexec`` job: its process, and its ranks' records and logs in ``directory``."""

    def __init__(self, directory: Path, size: int, process: ProcessRef | None = None) -> None:
        self.directory = directory
        self.size = size
        self.process = process

    @classmethod
    def start(
        cls, command: Sequence[str], directory: Path, size: int, env: dict[str, str]
    ) -> MPIJob:
        """Run ``command`` (an mpiexec line) detached, its output in ``directory/mpiexec.log``."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(directory, size, spawn(command, directory / "mpiexec.log", env))

    @property
    def log(self) -> Path:
        """The output of ``mpiexec`` itself (and of ranks before they open their own log)."""
        return self.directory / "mpiexec.log"

    def ranks(self) -> list[RankRecord]:
        """The ranks that have started so far."""
        return RankRecord.read_all(self.directory)

    def _rank_processes(self) -> dict[int, psutil.Process]:
        """Live local ranks by rank, each checked to still be that rank (not a reused pid)."""
        host = socket.gethostname()
        found = {}
        for record in self.ranks():
            if record.host != host:
                continue
            try:
                proc = psutil.Process(record.pid)
                if record.group in proc.cmdline() and proc.status() != psutil.STATUS_ZOMBIE:
                    found[record.rank] = proc
            except psutil.Error:
                continue
        return found

    def _job_processes(self) -> list[psutil.Process]:
        """Every local process of the job but mpiexec: its launch helpers and the ranks."""
        procs = {p.pid: p for p in self._rank_processes().values()}
        if self.process is not None and self.process.alive():
            try:
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    procs.setdefault(child.pid, child)
            except psutil.Error:
                pass
        return list(procs.values())

    def running(self) -> bool:
        """True while mpiexec or any local rank lives."""
        alive = self.process is not None and self.process.alive()
        return alive or bool(self._rank_processes())

    def signal(self, sig: int) -> None:
        """Send ``sig`` to each local rank (mpiexec would end the whole job on SIGINT)."""
        for proc in self._rank_processes().values():
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        """End the whole job: SIGTERM to mpiexec, which passes it to every rank; then SIGKILL."""
        others = self._job_processes()  # before mpiexec goes: its children are found through it
        if self.process is not None:
            stop_all([self.process], timeout)
        left = [p for p in others if p.is_running()]
        for proc in left:
            try:
                proc.terminate()
            except psutil.Error:
                pass
        _, left = psutil.wait_procs(left, timeout=min(timeout, ORPHAN_GRACE))
        for proc in left:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=5)

    def report(self, lines: int = 20) -> str:
        """How the job ended or where it stands: ranks that failed, with status and last output."""
        records = self.ranks()
        ended = exit_statuses(self.directory)
        parts = []
        if self.process is not None and not self.process.alive():
            code = self.process.returncode()
            parts.append("mpiexec exited" + ("" if code is None else f" with status {code}"))
        elif len(records) < self.size:
            parts.append(f"{len(records)} of {self.size} ranks have started")
        failed = [r for r in records if ended.get(r.pid, (0.0, 0))[1] != 0]
        for r in sorted(failed, key=lambda r: ended[r.pid][0])[:3]:  # the first to fail first
            log = RankRecord.log_path(self.directory, r.rank)
            parts.append(
                f"rank {r.rank} (pid {r.pid} on {r.host}) {describe_status(ended[r.pid][1])}; "
                f"its last output:\n{_indent(tail(log, lines))}"
            )
        said = tail(self.directory / SAID_FILE, lines)
        if said:
            parts.append(
                "ranks said at startup:\n" + _indent("\n".join(dict.fromkeys(said.splitlines())))
            )
        parts.append(
            f"mpiexec's last output ({self.log}):\n" + _indent(_mpiexec_output(self.log, lines))
        )
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state: directory, size and the mpiexec process."""
        return {
            "directory": str(self.directory),
            "size": self.size,
            "process": self.process.to_dict() if self.process else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MPIJob:
        """Inverse of :meth:`to_dict`."""
        process = ProcessRef.from_dict(data["process"]) if data.get("process") else None
        return cls(Path(data["directory"]), int(data["size"]), process)
