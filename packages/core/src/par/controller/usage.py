"""What the controller itself costs the machine: its memory and CPU, relays included.

The controller is three processes (the hub and its two relays, relays.py),
and at thousands of engines most of its memory is the relays' (each
connection's buffers, which grow with the messages through them: see
docs/performance.md, "A controller's memory over hours"). So ``status()``
reports them together, in ``usage``: ``rss``, the bytes resident in all
three, and ``cpu``, the percent of one core they used since the previous
reading. ``par monitor`` shows both in its header, so that an operator sees
the controller grow or saturate before it fails.

A reading costs a few system calls a process; it is taken only when a
client asks for the status (a monitor, about once a second), and a reading
within ``MIN_INTERVAL`` of the last one repeats its CPU figure rather than
dividing by a sliver of time.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

MIN_INTERVAL = 0.2  # seconds: closer readings share the CPU figure of the previous one


class Usage:
    """Reads the memory and CPU of the hub and its relays (by process id)."""

    def __init__(self, pids: list[int]) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self._mark = (time.monotonic(), self._totals()[0])
        self._cpu = 0.0

    def _totals(self) -> tuple[float, int]:
        """CPU seconds and resident bytes of the processes, summed (one pass)."""
        cpu, rss = 0.0, 0
        for proc in self.processes:
            try:
                with proc.oneshot():
                    times, memory = proc.cpu_times(), proc.memory_info()
            except psutil.Error:  # a relay that ended: it is being started again
                continue
            cpu += times.user + times.system
            rss += memory.rss
        return cpu, rss

    def read(self) -> dict[str, Any]:
        """``rss``: bytes resident in all the controller's processes; ``cpu``: percent of
        one core they used since the previous reading (the first: since the hub began to serve)."""
        now, (cpu, rss) = time.monotonic(), self._totals()
        then, cpu0 = self._mark
        if now - then >= MIN_INTERVAL:
            self._cpu = round(100.0 * (cpu - cpu0) / (now - then), 1)
            self._mark = (now, cpu)
        return {"rss": rss, "cpu": self._cpu}
