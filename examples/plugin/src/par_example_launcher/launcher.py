"""The ``example`` engine launcher: local engines at a lower CPU priority, each with its own env.

Why a site might want it: engines that share a workstation with people
should yield the CPU to interactive work (``nice``), and engines often need
per-engine settings such as ``CUDA_VISIBLE_DEVICES={i}`` to pin one GPU each.

Everything here uses only par's public kit:

- :class:`par.launcher.EngineSetLauncher`: the base class, ``OPTIONS`` and
  ``engine_command()``;
- :mod:`par.process`: ``spawn`` a detached process, ``ProcessRef`` (PID plus
  start time, safe to store and restore), ``stop_all``, ``tail``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Self

from par.launcher import EngineSetLauncher, LaunchContext, LauncherError, Option
from par.process import ProcessRef, spawn, stop_all, tail


def parse_env(spec: str, index: int) -> dict[str, str]:
    """``'A=1,B=x{i}'`` as a dict for engine ``index`` (``{i}`` becomes the index)."""
    env: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise LauncherError(
                f"--env: {item!r} is not NAME=VALUE; write e.g. 'OMP_NUM_THREADS=1'"
            )
        env[name.strip()] = value.replace("{i}", str(index))
    return env


class NicedEngineSetLauncher(EngineSetLauncher):
    """Runs ``n`` engines on this machine under ``nice``, each with its own environment."""

    # The name users type: par start --launcher example, par.Cluster(engines="example").
    PLUGIN_NAME = "example"
    # Each option becomes a keyword of par.Cluster and a flag of `par start` (--nice, --env).
    OPTIONS = (
        Option("nice", int, 10, "niceness added to every engine, 0 to 19 (19: lowest priority)"),
        Option("env", str, "", "per-engine environment 'NAME=VALUE,...'; {i} is the engine index"),
    )

    def __init__(self, context: LaunchContext, n: int = 1, **options: Any) -> None:
        # The base class checks option names and fills self.options with defaults.
        super().__init__(context, n=n, **options)
        # Check values here, so a mistake fails before any process starts.
        if not 0 <= int(self.options["nice"]) <= 19:
            raise LauncherError(f"--nice must be between 0 and 19, not {self.options['nice']}")
        self.envs = [parse_env(str(self.options["env"]), i) for i in range(n)]
        self.processes: list[ProcessRef] = []

    def start(self) -> None:
        """Start the engines and return at once: they register with the controller themselves."""
        logs = self.context.cluster_dir / "logs"
        stamp = int(time.time() * 1000)  # a restarted or added set gets new log files
        # `nice` then execs the engine, so the PID par records is the engine's own.
        command = ["nice", "-n", str(self.options["nice"]), *self.engine_command()]
        for i, env in enumerate(self.envs):
            # The engine adds PAR_ENGINE_INFO to what it registers: rc.engines() shows it.
            info = {"example_index": i, "nice": self.options["nice"]}
            try:
                ref = spawn(
                    command,
                    logs / f"example-engine-{stamp}-{i}.log",
                    env={**env, "PAR_ENGINE_INFO": json.dumps(info)},
                )
            except FileNotFoundError:
                raise LauncherError("the `nice` command was not found: install coreutils")
            self.processes.append(ref)
        # A launcher may report events of its own; they reach par monitor and plugins.
        self.emit("spawned", pids=[p.pid for p in self.processes])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every engine: SIGTERM, then SIGKILL for any still alive after ``timeout``."""
        stop_all(self.processes, timeout)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to every engine (SIGINT interrupts the task an engine runs)."""
        for process in self.processes:
            process.signal(sig)

    def running(self) -> bool:
        """True while any engine of this set is alive; par uses it to spot engines that died."""
        return any(process.alive() for process in self.processes)

    def output(self, lines: int = 20) -> str:
        """The end of the logs of engines that exited (par shows it when engines fail to start)."""
        dead = [p for p in self.processes if not p.alive()] or self.processes[:1]
        return "\n".join(f"[engine pid {p.pid}]\n{tail(p.log, lines)}" for p in dead[:3])

    def to_dict(self) -> dict[str, Any]:
        """What `par stop` in another process needs: n, options (from the base) and the PIDs."""
        return {**super().to_dict(), "processes": [p.to_dict() for p in self.processes]}

    @classmethod
    def from_dict(cls, context: LaunchContext, data: dict[str, Any]) -> Self:
        """Rebuild the launcher :meth:`to_dict` described, in any process."""
        self = super().from_dict(context, data)
        self.processes = [ProcessRef.from_dict(p) for p in data.get("processes", [])]
        return self
