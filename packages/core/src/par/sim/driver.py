"""Start processes of simulated engines and drive them from Python.

Each process runs ``python -m par.sim`` (:mod:`par.sim.swarm`) and is
driven over its stdin and stdout, one command and one JSON answer a line.
The engines are spread over at least as many processes as there are cores,
and over enough that each holds at most ``PER_PROCESS`` (each engine holds
six open files). A process whose stdin closes stops its engines, so none
outlives a driver that died.
"""

from __future__ import annotations

import json
import math
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

PER_PROCESS = 1500
ANSWER_TIMEOUT = 60.0  # seconds a process may take to answer a command


class _Process:
    """One ``python -m par.sim`` process and the answers it has written so far."""

    def __init__(self, cmd: list[str]) -> None:
        self.popen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.buffer = b""

    @property
    def stdin(self) -> IO[bytes]:
        assert self.popen.stdin is not None
        return self.popen.stdin

    def tell(self, command: str) -> None:
        """Send a command (its answer is read by :meth:`answer`)."""
        self.stdin.write(command.encode() + b"\n")
        self.stdin.flush()

    def answer(self, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        """The next JSON line the process writes."""
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"simulated engines (pid {self.popen.pid}) did not answer within {timeout} s"
                )
            if select.select([fd], [], [], left)[0]:
                data = os.read(fd, 1 << 16)
                if not data:
                    code = self.popen.wait()
                    raise RuntimeError(
                        f"simulated engines (pid {self.popen.pid}) exited with code {code}; "
                        "their error is on stderr"
                    )
                self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ValueError(answer["error"])
        return answer

    def ask(self, command: str) -> dict[str, Any]:
        """Send a command and return its answer."""
        self.tell(command)
        return self.answer()


class SimEngines:
    """Simulated engines of a running controller, in processes of their own.

    ::

        with SimEngines(connection_file, n=300) as sim:
            rc.wait_for_engines(300, timeout=60)
            lost = sim.kill(3)          # the ids of the engines killed

    ``delay``: seconds each task takes (0: answered at once). ``processes``:
    how many processes share the engines (default: see the module).
    """

    def __init__(
        self,
        connection_file: str | Path,
        n: int,
        processes: int | None = None,
        delay: float = 0.0,
    ) -> None:
        if n < 1:
            raise ValueError(f"n must be 1 or more simulated engines, not {n}")
        if processes is not None and not 1 <= processes <= n:
            raise ValueError(f"processes must be between 1 and n ({n}), not {processes}")
        if delay < 0:
            raise ValueError(f"delay must be 0 or more seconds, not {delay}")
        self.connection_file = str(connection_file)
        self.n = n
        self.delay = delay
        self.processes = processes or max(min(os.cpu_count() or 1, n), math.ceil(n / PER_PROCESS))
        self.started_at: float | None = None  # wall time the first registration went out
        self._procs: list[_Process] = []

    def __enter__(self) -> SimEngines:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the processes; return once each has begun registering its engines."""
        if self._procs:
            raise RuntimeError("these simulated engines are started already")
        p = self.processes
        try:
            for i in range(p):
                count = self.n // p + (i < self.n % p)
                cmd = [sys.executable, "-m", "par.sim", self.connection_file, "-n", str(count)]
                self._procs.append(_Process([*cmd, "--delay", repr(self.delay)]))
            self.started_at = min(proc.answer()["started"] for proc in self._procs)
        except BaseException:
            self.stop()
            raise

    def pids(self) -> list[int]:
        """Process ids of the processes that run the engines."""
        return [proc.popen.pid for proc in self._procs]

    def registered(self) -> list[int]:
        """Ids of the engines registered and alive (neither killed nor hung), in order."""
        return sorted(eid for proc in self._procs for eid in proc.ask("status")["registered"])

    def heartbeats_late(self) -> float:
        """The most any engine's heartbeat went out after it was due, in seconds: a
        controller that declares engines lost while this stays well under its timeout
        lost them on its own."""
        return max(proc.ask("status")["late"] for proc in self._procs)

    def wait_registered(self, n: int | None = None, timeout: float = 60.0) -> list[int]:
        """Wait until ``n`` engines (default: all) are registered; return their ids."""
        want = self.n if n is None else n
        deadline = time.monotonic() + timeout
        while len(ids := self.registered()) < want:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids)} of {want} simulated engines registered")
            time.sleep(0.1)
        return ids

    def kill(self, k: int) -> list[int]:
        """Kill ``k`` engines (their connections close without a word); their ids."""
        return self._take("kill", k)

    def hang(self, k: int) -> list[int]:
        """Hang ``k`` engines (silent, their connections open); their ids."""
        return self._take("hang", k)

    def _take(self, command: str, k: int) -> list[int]:
        if k < 0:
            raise ValueError(f"the number of engines to {command} must be 0 or more, not {k}")
        ids: list[int] = []
        for proc in self._procs:
            if len(ids) < k:
                ids += proc.ask(f"{command} {k - len(ids)}")["ids"]
        return sorted(ids)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every engine (each unregisters) and wait for the processes to exit."""
        for proc in self._procs:
            try:
                proc.stdin.close()  # the end of stdin: the process stops its engines
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for proc in self._procs:
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()
        self._procs = []
