"""How many more engines this machine can hold, so that a mistyped ``-n`` is refused
before it forks the machine into the ground.

Two things run out: memory (an idle engine holds about 25 MB resident, 12 MB of
it its own, or about 5 MB when forked from a fork server, which shares the rest;
it is counted for a little more) and the user's process limit (``ulimit -u``, which
Linux counts in threads; an engine runs four). The estimate is rough by design: it
guards against counts off by orders of magnitude, and ``--force`` overrides it.
"""

from __future__ import annotations

import os
import resource

import psutil

ENGINE_MEMORY = 30 << 20  # bytes an engine is counted for
FORKED_ENGINE_MEMORY = 10 << 20  # and a forked one
ENGINE_THREADS = 4


def _threads_in_use() -> int:
    """Threads this user runs now (what ``ulimit -u`` counts)."""
    me, count = os.getuid(), 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        uids = proc.info["uids"]
        if uids is not None and uids.real == me:
            count += proc.info["num_threads"] or 0
    return count


def room(forked: bool = False) -> tuple[int, str]:
    """How many more engines fit (forked ones, or interpreters of their own), and what
    limits them."""
    available = psutil.virtual_memory().available
    each = FORKED_ENGINE_MEMORY if forked else ENGINE_MEMORY
    fits = [(available // each, f"{available / 2**30:.1f} GB of memory available")]
    limit = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if limit != resource.RLIM_INFINITY and os.getuid() != 0:  # root is not held to it
        free = max(limit - _threads_in_use(), 0)
        fits.append((free // ENGINE_THREADS, f"{free} more threads allowed (ulimit -u {limit})"))
    return min(fits)


def check(n: int, forked: bool = False) -> None:
    """Raise ValueError if ``n`` more engines would not fit on this machine."""
    fit, why = room(forked)
    if n > fit:
        raise ValueError(
            f"{n} local engines are more than this machine can hold (about {fit}: {why}); "
            "start fewer, or pass --force to start them anyway"
        )
