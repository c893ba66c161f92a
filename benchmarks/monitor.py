"""What ``par monitor`` costs, measured from outside: ``python benchmarks/monitor.py``.

The monitor runs as a user runs it, ``par monitor`` in a terminal: here a
pseudo-terminal (120x35) whose output this script reads and throws away.
Its CPU is read from ``/proc/<pid>/stat`` (user + system time) over a
window, after it has settled; a figure is percent of one core.

- ``idle``: watching 64 idle engines.
- ``map``: watching 4 engines run a 20,000-task map (tasks of 4 ms, 10 of
  them fail: about 25 s of work), over the map's duration.
- ``tab``: watching 1,000 simulated engines (``par.sim``) run tasks of
  0.5 s, the time from a key (``2``, ``3``, ``4``, ``1``) to the new tab
  drawn in the terminal, and the CPU the monitor's UI thread used meanwhile
  (on a machine shared with other work, the wall time is mostly waiting
  for a core: the load average is reported beside it); before the keys, the
  monitor's CPU while it watches, all of it (10 s) then its UI thread's (10 s).

Targets (docs/monitor.md): idle < 3 %, map < 10 %, a tab switch < 200 ms.
``--quick`` runs each for a few seconds (a check that the script works).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import par

COLUMNS, LINES = 120, 35
HOSTS = 16


class Terminal:
    """A command in a pseudo-terminal, its output read (and kept, to look for text)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the monitor
            os.environ.update(env, TERM="xterm-256color")
            os.execv(argv[0], argv)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        self.output = bytearray()
        self.changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.5)
                data = os.read(self.fd, 1 << 16) if ready else b""
            except OSError:
                return
            if ready and not data:
                return
            with self.changed:
                self.output += data
                del self.output[: max(len(self.output) - (1 << 20), 0)]
                self.changed.notify_all()

    def cpu(self, thread: bool = False) -> float:
        """Seconds of CPU the process (or its main thread, the UI's) has used, user + system."""
        path = f"/proc/{self.pid}/task/{self.pid}/stat" if thread else f"/proc/{self.pid}/stat"
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def key_until(self, key: bytes, text: bytes, timeout: float = 30) -> tuple[float, float]:
        """Press a key; the seconds until ``text`` is drawn, and the UI thread's CPU seconds
        meanwhile (TimeoutError if it is never drawn)."""
        with self.changed:
            self.output.clear()
        start, cpu = time.perf_counter(), self.cpu(thread=True)
        os.write(self.fd, key)
        with self.changed:
            while text not in self.output:
                if not self.changed.wait(timeout - (time.perf_counter() - start)):
                    raise TimeoutError(f"{text!r} not drawn after {key!r}")
        return time.perf_counter() - start, self.cpu(thread=True) - cpu

    def wait_for(self, text: bytes, timeout: float = 60) -> None:
        """Wait until ``text`` has been drawn."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while text not in self.output:
                if not self.changed.wait(deadline - time.monotonic()):
                    raise TimeoutError(f"{text!r} never drawn")

    def quit(self) -> None:
        """Press q and reap the process."""
        try:
            os.write(self.fd, b"q")
        except OSError:
            pass
        for _ in range(50):
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                return
            time.sleep(0.1)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)


def percent(term: Terminal, seconds: float, thread: bool = False) -> float:
    """The monitor's CPU (or its UI thread's) over the next ``seconds``, in percent of a
    core."""
    cpu0, t0 = term.cpu(thread), time.monotonic()
    time.sleep(seconds)
    return 100 * (term.cpu(thread) - cpu0) / (time.monotonic() - t0)


def par_monitor(cluster_id: str) -> Terminal:
    """``par monitor`` watching a cluster, in a terminal."""
    term = Terminal([sys.executable, "-m", "par", "monitor", "--cluster-id", cluster_id], {})
    term.wait_for(b"connected")
    return term


@contextmanager
def watched_cluster(engines: int, settle: float) -> Iterator[tuple[par.Client, Terminal]]:
    """A cluster of ``engines`` and ``par monitor`` watching it, ``settle`` seconds after
    the monitor connected."""
    with par.Cluster(n=engines) as rc:
        rc.wait_for_engines(engines, timeout=600)
        term = par_monitor(rc.cluster.cluster_id)
        try:
            time.sleep(settle)
            yield rc, term
        finally:
            term.quit()


def idle(engines: int, settle: float, window: float) -> dict[str, Any]:
    """CPU of a monitor watching idle engines."""
    with watched_cluster(engines, settle) as (_, term):
        return {"engines": engines, "cpu_percent": round(percent(term, window), 2)}


def fail_some(x: int) -> int:
    """A task of about 4 ms; every 2000th fails."""
    time.sleep(0.004)
    if x % 2000 == 1999:
        raise ValueError(x)
    return x


def under_map(engines: int, tasks: int, settle: float) -> dict[str, Any]:
    """CPU of a monitor while its cluster runs a map."""
    with watched_cluster(engines, settle) as (rc, term):
        cpu0, t0 = term.cpu(), time.monotonic()
        ar = rc.load_balanced_view().map_async(fail_some, range(tasks))
        ar.wait()
        took = time.monotonic() - t0
        used = term.cpu() - cpu0
        return {
            "engines": engines,
            "tasks": tasks,
            "failed": rc.status()["counts"]["failed"],
            "map_seconds": round(took, 1),
            "cpu_percent": round(100 * used / took, 2),
        }


def tab_switch(engines: int, rounds: int) -> dict[str, Any]:
    """Seconds from a tab's key to the tab drawn, watching many simulated engines at work."""
    from par import paths
    from par.sim import SimEngines

    cluster = par.Cluster(n=0)
    cluster.start_controller_sync()
    rc = cluster.connect_client_sync()
    tabs = [(b"2", b"failed tasks, newest first"), (b"3", b"output of engine"), (b"4", b"launcher")]
    tabs.append((b"1", b"s/cell"))
    try:
        with SimEngines(paths.connection_file(cluster.cluster_id), engines, delay=0.5):
            rc.wait_for_engines(engines, timeout=600)
            work = rc.load_balanced_view().map_async(abs, range(100 * engines))
            term = par_monitor(cluster.cluster_id)
            try:
                term.wait_for(b"s/cell")
                time.sleep(5)
                watching, ui_watching = percent(term, 10), percent(term, 10, thread=True)
                walls: list[float] = []
                cpus: list[float] = []
                slowest: dict[str, float] = {}
                for _ in range(rounds):
                    for key, text in tabs:
                        wall, cpu = term.key_until(key, text)
                        walls.append(wall)
                        cpus.append(cpu)
                        slowest[key.decode()] = max(slowest.get(key.decode(), 0.0), wall)
                        time.sleep(0.5)
                busy = not work.ready()
            finally:
                term.quit()
            rc.abort(work)
    finally:
        rc.close()
        cluster.stop_cluster_sync()
    return {
        "engines": engines,
        "source": "par.sim, tasks of 0.5 s",
        "busy_throughout": busy,
        "watching_cpu_percent": round(watching, 1),
        "watching_ui_thread_cpu_percent": round(ui_watching, 1),
        "switches": len(walls),
        "wall_median_ms": round(1000 * statistics.median(walls)),
        "wall_max_ms": round(1000 * max(walls)),
        "ui_cpu_median_ms": round(1000 * statistics.median(cpus)),
        "ui_cpu_max_ms": round(1000 * max(cpus)),
        "wall_max_ms_by_key": {k: round(1000 * v) for k, v in slowest.items()},
        "load_average": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    """Measure, print a table, write the figures as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="idle,map,tab", help="comma list of idle, map, tab")
    p.add_argument("--quick", action="store_true", help="short windows, small sizes")
    p.add_argument("--out", help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    os.environ.setdefault("PAR_HOME", tempfile.mkdtemp(prefix="par-bench-monitor-"))
    quick = args.quick
    figures: dict[str, Any] = {}
    only = args.only.split(",")
    if "idle" in only:
        figures["idle"] = idle(8 if quick else 64, 3 if quick else 20, 5 if quick else 60)
        print("idle", figures["idle"], flush=True)
    if "map" in only:
        figures["map"] = under_map(4, 2000 if quick else 20_000, 3 if quick else 15)
        print("map", figures["map"], flush=True)
    if "tab" in only:
        figures["tab"] = tab_switch(100 if quick else 1000, 1 if quick else 5)
        print("tab", figures["tab"], flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
