"""Open files: the limit a controller's processes reach first as engines join.

Every engine keeps one connection to each of the controller's processes (the
hub and its two relays, see ``controller/relays.py``): one open file in each
per engine. Most systems start a process with a soft limit of 1,024 open
files (macOS: 256) under a far higher hard limit, which a process may raise
its soft limit to by itself. A controller left at the soft limit stopped
accepting connections near 1,000 engines: the engines past it waited for
ever, and libzmq retried the accept in a loop that took most of a core.

So the hub raises its soft limit as far as the hard one lets it before it
starts its relays (which inherit it), and knows how many engines that leaves
room for (``engine_room`` in its connection file and ``status()``): a start
of more engines than that is refused before any starts, and a wait for more
says so and what to do (:func:`room_hint`). Simulated engines (``par.sim``)
raise their own limit the same way.
"""

from __future__ import annotations

import resource

# Open files a controller process needs besides its engines' connections: the hub holds
# 27 with one client (sockets, ipc, pipes, its epoll), and one more for each client.
RESERVE = 48
# The most macOS lets a process have open (OPEN_MAX), where the hard limit reads "unlimited"
# but setting the soft limit to it fails.
OPEN_MAX = 10_240


def raise_limit() -> int:
    """Raise this process's soft limit on open files as far as the hard limit allows (its
    children inherit it); return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (hard, OPEN_MAX):
        if target == resource.RLIM_INFINITY or target <= soft:
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            continue
    return soft


def engine_room(limit: int) -> int:
    """How many engines a controller whose processes may open ``limit`` files can hold."""
    if limit == resource.RLIM_INFINITY:
        return -1  # no bound
    return max(limit - RESERVE, 0)


def room_hint(wanted: int, room: int) -> str:
    """Why ``wanted`` engines may not all register ('' if the controller's limit on open
    files, which holds ``room``, is not why): to end an error's message."""
    if room < 0 or wanted <= room:
        return ""
    return (
        f"; the controller's processes may open {room + RESERVE} files each, one for each "
        f"engine's connection (room for about {room} engines): raise the hard limit on open "
        "files (`ulimit -Hn`, or nofile in /etc/security/limits.conf) and restart the "
        "controller to take more"
    )
