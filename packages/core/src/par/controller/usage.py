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
        self._mark = (time.monotonic(), self._cpu_seconds())
        self._cpu = 0.0

    def _cpu_seconds(self) -> float:
        total = 0.0
        for proc in self.processes:
            try:
                times = proc.cpu_times()
            except psutil.Error:  # a relay that ended: the controller is stopping
                continue
            total += times.user + times.system
        return total

    def _rss(self) -> int:
        total = 0
        for proc in self.processes:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def read(self) -> dict[str, Any]:
        """``rss``: bytes resident in all the controller's processes; ``cpu``: percent of
        one core they used since the previous reading (the first: since the hub began to serve)."""
        now, cpu = time.monotonic(), self._cpu_seconds()
        then, cpu0 = self._mark
        if now - then >= MIN_INTERVAL:
            self._cpu = round(100.0 * (cpu - cpu0) / (now - then), 1)
            self._mark = (now, cpu)
        return {"rss": self._rss(), "cpu": self._cpu}
