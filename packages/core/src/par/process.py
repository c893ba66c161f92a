"""Starting, watching and stopping local processes, for launchers.

Processes are identified by PID *and* start time, so a launcher restored
in another process never signals an unrelated process that reused a PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

_popens: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessRef:
    """A process this machine runs, as a launcher records it."""

    pid: int
    started: float
    log: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"pid": self.pid, "started": self.started, "log": self.log}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProcessRef:
        """Inverse of :meth:`to_dict`."""
        return cls(int(d["pid"]), float(d["started"]), str(d.get("log", "")))

    @classmethod
    def from_pid(cls, pid: int, log: str = "") -> ProcessRef:
        """A reference to a running process, whoever started it (this process, a daemon such
        as tmux, a container runtime): its start time is read now, so that a later process
        given the same pid is never taken for it. A pid already gone is never alive."""
        try:
            started = psutil.Process(pid).create_time()
        except psutil.Error:
            started = 0.0
        return cls(pid, started, log)

    def _proc(self) -> psutil.Process | None:
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.started) > 1.0:
                return None
            return proc
        except psutil.Error:
            return None

    def alive(self) -> bool:
        """True if the process exists and is not a zombie."""
        popen = _popens.get(self.pid)
        if popen is not None and popen.poll() is not None:
            return False
        proc = self._proc()
        try:
            return proc is not None and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def returncode(self) -> int | None:
        """The exit status if this process was started here and has ended."""
        popen = _popens.get(self.pid)
        return popen.poll() if popen is not None else None

    def exit_description(self) -> str | None:
        """How the process ended ('was killed by signal 9 (SIGKILL)'), if started here and ended."""
        code = self.returncode()
        if code is None:
            return None
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = "an unknown signal"
            return f"was killed by signal {-code} ({name})"
        return f"exited with status {code}"

    def signal(self, sig: int) -> None:
        """Send a signal if the process is still the one recorded."""
        proc = self._proc()
        if proc is not None:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass


def spawn(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> ProcessRef:
    """Start a detached process (own session, output to ``log``) and return its reference."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    _popens[popen.pid] = popen
    return ProcessRef.from_pid(popen.pid, str(log))


def stop_all(refs: Iterable[ProcessRef], timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Signal processes, wait up to ``timeout`` for them to exit, then kill what is left."""
    procs = [p for p in (r._proc() for r in refs) if p is not None]
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass
    left = _wait_gone(procs, timeout)
    for proc in left:
        try:
            proc.kill()
        except psutil.Error:
            pass
    _wait_gone(left, 5)
    for proc in procs:
        popen = _popens.pop(proc.pid, None)
        if popen is not None:
            try:
                popen.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass


def _gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until processes exit; a zombie counts as gone (another process may be its
    parent, and only the parent can reap it). Return those still running."""
    for popen in (_popens.get(p.pid) for p in procs):
        if popen is not None:
            popen.poll()  # reap our own children so they do not linger as zombies
    deadline = time.monotonic() + timeout
    left = [p for p in procs if not _gone(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        for popen in (_popens.get(p.pid) for p in left):
            if popen is not None:
                popen.poll()
        left = [p for p in left if not _gone(p)]
    return left


def tail(path: str | Path, lines: int = 20) -> str:
    """The last lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - 64 * 1024, 0))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
