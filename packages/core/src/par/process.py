"""Starting, watching and stopping local processes, for launchers.

Processes are identified by PID *and* start time, so a launcher restored
in another process never signals an unrelated process that reused a PID.

Each process started here carries a *mark*: a random token in its
environment (``PAR_LAUNCH_MARK``), which every process it starts inherits,
in whatever session or process group. Stopping a process then also sweeps
the processes that carry its mark: what an engine's tasks started and the
engine could not end itself, because it was killed with SIGKILL (a process
that empties its environment escapes the sweep).

Engines may also come from a fork server (:mod:`par.engine.forkserver`):
:func:`start_fork_server` starts one and :func:`forked_engines` reads the
engines it reports. Each is recorded like a spawned process, with the file in
which the server, their parent, records how each one ends (``exits``), so that
their exit status is known in any process, not only in the one that started
them.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .launcher import LauncherError
from .paths import make_private_dir, open_private_log

log = logging.getLogger("par.launcher")

MARK_VARIABLE = "PAR_LAUNCH_MARK"
SWEEP_GRACE = 3.0  # seconds swept processes get between SIGTERM and SIGKILL
KILL_ROUNDS = 5  # of SIGKILL, for processes forked while others were being ended

_popens: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ProcessRef:
    """A process this machine runs, as a launcher records it."""

    pid: int
    started: float
    log: str = ""
    mark: str = ""  # the token in its environment and its descendants'
    exits: str = ""  # the file its parent records its exit status in (a fork server's)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "pid": self.pid,
            "started": self.started,
            "log": self.log,
            "mark": self.mark,
            "exits": self.exits,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProcessRef:
        """Inverse of :meth:`to_dict`."""
        return cls(
            int(d["pid"]),
            float(d["started"]),
            str(d.get("log", "")),
            str(d.get("mark", "")),
            str(d.get("exits", "")),
        )

    @classmethod
    def from_pid(cls, pid: int, log: str = "", mark: str = "", exits: str = "") -> ProcessRef:
        """A reference to a running process, whoever started it (this process, a daemon such
        as tmux, a container runtime): its start time is read now, so that a later process
        given the same pid is never taken for it. A pid already gone is never alive.
        ``mark``: the one in its environment, if :func:`spawn` gave it one; ``exits``: the
        file its parent records its exit status in, if a fork server started it."""
        try:
            started = psutil.Process(pid).create_time()
        except psutil.Error:
            started = 0.0
        return cls(pid, started, log, mark, exits)

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
        if popen is not None:  # a child of this process: its pid is ours until reaped
            return popen.poll() is None
        proc = self._proc()
        try:
            return proc is not None and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def returncode(self, wait: float = 0.0) -> int | None:
        """The exit status if it has ended and this process started it, or its fork server
        recorded it (negative: killed by that signal). ``wait``: seconds to give a fork
        server to record the status of a process that has just ended."""
        popen = _popens.get(self.pid)
        if popen is not None:
            return popen.poll()
        if not self.exits:
            return None
        deadline = time.monotonic() + wait
        code = _recorded_exit(self.exits, self.pid)
        while code is None and time.monotonic() < deadline and not self.alive():
            time.sleep(0.05)
            code = _recorded_exit(self.exits, self.pid)
        return code

    def exit_description(self, wait: float = 0.0) -> str | None:
        """How the process ended ('was killed by signal 9 (SIGKILL)'), if known (see
        :meth:`returncode`)."""
        code = self.returncode(wait)
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


def _recorded_exit(path: str, pid: int) -> int | None:
    """The exit status a fork server recorded for ``pid`` (``pid returncode`` lines)."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        fields = line.split()
        if len(fields) == 2 and fields[0] == str(pid):
            return int(fields[1])
    return None


def spawn(
    cmd: Sequence[str],
    log: Path,
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> ProcessRef:
    """Start a detached process (own session, output to ``log``, a mark of its own) and
    return its reference; ``pass_fds``: file descriptors it inherits.

    The log holds what the user's tasks print: it and a folder made for it are owner-only.
    """
    make_private_dir(log.parent)
    mark = secrets.token_hex(8)
    with open(open_private_log(log), "ab") as out:
        popen = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {}), MARK_VARIABLE: mark},
            pass_fds=pass_fds,
        )
    _popens[popen.pid] = popen
    return ProcessRef.from_pid(popen.pid, str(log), mark)


def start_fork_server(cmd: Sequence[str], log: Path) -> tuple[ProcessRef, int]:
    """Start a fork server (``cmd``: :mod:`par.engine.forkserver` without ``--report-fd``);
    return it and the read end of the pipe it reports its engines on."""
    read, write = os.pipe()
    try:
        server = spawn([*cmd, "--report-fd", str(write)], log, pass_fds=(write,))
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    return server, read


def forked_engines(
    server: ProcessRef, reports: int, n: int, timeout: float
) -> Iterator[ProcessRef]:
    """The ``n`` engines a fork server reports on the pipe ``reports``, as it forks them.

    Raises LauncherError, with the server's output, if it forks fewer (it failed to
    import, to fork) or takes longer than ``timeout`` seconds. Closes the pipe.
    """
    deadline = time.monotonic() + timeout
    pending = b""
    count = 0
    with open(reports, "rb", buffering=0) as pipe:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                raise LauncherError(
                    f"the fork server forked {count} of {n} engines within {timeout:.0f} s; "
                    f"its output:\n{tail(server.log)}"
                )
            chunk = pipe.read(1 << 16)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                entry = json.loads(line)
                if "error" in entry:
                    raise LauncherError(f"the fork server stopped: {entry['error']}")
                count += 1
                yield ProcessRef.from_pid(
                    int(entry["pid"]), entry["log"], entry["mark"], entry["exits"]
                )
    if count < n:
        raise LauncherError(
            f"the fork server exited after forking {count} of {n} engines; "
            f"its output:\n{tail(server.log)}"
        )


def stop_all(refs: Iterable[ProcessRef], timeout: float = 10.0, sig: int = signal.SIGTERM) -> None:
    """Signal processes, wait up to ``timeout`` for them to exit, then kill what is left;
    then sweep what they started (:func:`sweep`)."""
    refs = list(refs)
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
    sweep({r.mark for r in refs if r.mark})


def _marked(marks: set[str]) -> list[psutil.Process]:
    """This user's processes whose environment carries one of ``marks``, but for this
    process and its ancestors (a ``par stop`` run by a task carries its engine's mark)."""
    spared = {os.getpid()}
    try:
        spared.update(p.pid for p in psutil.Process().parents())
    except psutil.Error:
        pass
    uid = os.getuid()
    found = []
    for proc in psutil.process_iter(["uids", "status"]):
        info = proc.info
        if proc.pid in spared or info["uids"] is None or info["uids"].real != uid:
            continue
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get(MARK_VARIABLE) in marks:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def end_processes(
    find: Callable[[], list[psutil.Process]], grace: float
) -> tuple[list[psutil.Process], int]:
    """End the processes ``find`` returns: SIGTERM, then SIGKILL after ``grace`` seconds
    for what it still returns (in rounds: one may fork meanwhile). Return the processes
    first found and how many of them needed SIGKILL."""
    found = find()
    _send(found, signal.SIGTERM)
    _, left = psutil.wait_procs(found, timeout=grace)
    for _ in range(KILL_ROUNDS):
        stubborn = find()
        if not stubborn:
            break
        _send(stubborn, signal.SIGKILL)
        psutil.wait_procs(stubborn, timeout=grace)
    return found, len(left)


def _send(procs: list[psutil.Process], sig: int) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass


def sweep(marks: set[str], grace: float = SWEEP_GRACE) -> None:
    """End every process that carries one of ``marks`` (SIGTERM, then SIGKILL after
    ``grace`` seconds), saying which."""
    if not marks:
        return
    found, killed = end_processes(lambda: _marked(marks), grace)
    if found:
        log.warning(
            "ended %d process(es) left behind by stopped processes (pids %s)%s",
            len(found),
            ", ".join(str(p.pid) for p in found),
            f"; {killed} only with SIGKILL" if killed else "",
        )


def end_lingering(pid: int, sign: str, grace: float) -> bool:
    """Kill (SIGKILL) a process of this machine that should be exiting, and the processes
    below it, if it still runs after ``grace`` seconds; ``sign`` must be part of its command
    line, so that a process that reused the pid is spared. True if it had to be killed."""
    try:
        proc = psutil.Process(pid)
        if sign not in proc.cmdline():
            return False
    except psutil.Error:
        return False
    if not _wait_gone([proc], grace):
        return False
    try:
        tree = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return False
    _send(tree, signal.SIGKILL)
    _wait_gone(tree, 5)
    return True


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
