"""Where a controller's time goes under simulated engines, phase by phase.

::

    uv pip install py-spy              # a sampling profiler; not a dependency of par
    python benchmarks/profile_controller.py --engines 5000 --tasks 20000 --out /tmp/prof

Starts a controller (``par controller``, unchanged) and simulated engines
(``par.sim``), and records the controller with py-spy, without pausing it,
through each phase: registration, idle heartbeats, ``rc[:].execute`` on all,
and a load-balanced map of no-op tasks. For each phase it prints the wall
time, the controller's CPU time and the functions that took the most of it,
on their own and with what they call (shares of the samples py-spy took
while a thread ran: the hub's loop and the direct device's thread). The raw
profiles (py-spy's collapsed stacks, with line numbers) stay in ``--out`` for
a flame graph (speedscope, flamegraph.pl).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim_scale import controller, cpu, wait_up
from tasks import noop

FRAME = re.compile(r"^(.*) \((?:.*/(?:site-packages|src)/)?(.*?)(?::\d+)?\)$")
# The frames every sample of a thread passes through: left out of the callee totals.
ENTRY = re.compile(r"runpy|par/cli\.py|controller/__main__\.py|^serve |^Controller\.run |threading")


def top(path: Path, k: int) -> list[str]:
    """The ``k`` functions with the most samples of their own, and with their callees."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = [FRAME.sub(r"\1 (\2)", f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            if not ENTRY.search(f):
                total[f] += n
    out = [f"  {samples} samples; own time:"]
    out += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(k)]
    out += ["  with callees:"]
    out += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in total.most_common(k)]
    return out


class Recorder:
    """py-spy recording a process until :meth:`stop`."""

    def __init__(self, pyspy: str, pid: int, path: Path) -> None:
        self.path = path
        cmd = [pyspy, "record", "--pid", str(pid), "--nonblocking", "--rate", "100"]
        cmd += ["--format", "raw", "--output", str(path), "--duration", "100000"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # py-spy attaches

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=60)
        if not self.path.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-300:]}")


def phase(name: str, pyspy: str, ctl: Any, out: Path, k: int, run: Callable[[], str]) -> None:
    """Run one phase under py-spy; print what it did, its times and its top functions."""
    path = out / f"{name}.txt"
    recorder = Recorder(pyspy, ctl.pid, path)
    cpu0, t = cpu(ctl), time.perf_counter()
    try:
        what = run()
    except Exception as exc:  # a phase that fails (engines lost, say) is profiled all the same
        what = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    finally:
        wall, used = time.perf_counter() - t, cpu(ctl) - cpu0
        recorder.stop()
    print(f"{name} ({what}): {wall:.2f} s wall, controller CPU {used:.2f} s; {path}")
    print("\n".join(top(path, k)), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Profile a controller under simulated engines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", type=int, default=5000, help="simulated engines (default 5000)")
    p.add_argument("--tasks", type=int, default=20_000, help="map tasks (default 20,000)")
    p.add_argument("--idle", type=float, default=10.0, help="seconds of idle heartbeats")
    p.add_argument("--top", type=int, default=15, help="functions listed per phase")
    p.add_argument("--out", type=Path, default=Path("profiles"), help="where the profiles go")
    args = p.parse_args(argv)
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        p.error("py-spy not found: install it with `uv pip install py-spy`")
    args.out.mkdir(parents=True, exist_ok=True)
    home = tempfile.TemporaryDirectory(prefix="par-profile-")
    os.environ["PAR_HOME"] = home.name  # this cluster's files apart from everyone's
    from par.sim import SimEngines

    with controller() as (rc, connection_file, ctl):
        sim = SimEngines(connection_file, args.engines)

        def register() -> str:
            sim.start()
            return f"{wait_up(rc, sim.n)} of {sim.n} engines up"

        def execute() -> str:
            rc[:].execute("a = 1", block=False).get(timeout=600)
            return f"answered by all {len(rc.ids)}"

        def map_tasks() -> str:
            ar = rc.load_balanced_view().map_async(noop, range(args.tasks), chunksize=1)
            ar.wait(600)
            failed = sum(1 for md in ar.metadata if md["status"] not in (None, "ok"))
            return f"{ar.progress} of {args.tasks} tasks done, {failed} failed"

        phases = [
            ("register", register),
            ("idle", lambda: time.sleep(args.idle) or f"{args.idle:g} s"),
            ("execute", execute),
            ("map", map_tasks),
        ]
        try:
            for name, run in phases:
                phase(name, pyspy, ctl, args.out, args.top, run)
                print(f"  {len(rc.ids)} engines up after it", flush=True)
            late = sim.heartbeats_late()
            print(f"the simulated heartbeats' worst lateness: {late:.2f} s")
        finally:
            sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
