"""The processes an engine's tasks start: kept in the engine's tree, ended with the engine.

A task may start processes that outlive it: a plain child, one in a session of
its own (``setsid``), a daemon that forks twice so that its parent can exit.
On Linux the engine makes itself a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``): a descendant whose parent exits is
reparented to the engine instead of to init, so every process a task started
stays in the engine's process tree, whatever session it moved to. When the
engine stops it ends that whole tree: SIGTERM, then SIGKILL for what is left
after a grace period.

An orphan that exits stays a zombie of the engine until the engine ends: the
engine does not reap children itself, since that would take the exit status
from under a ``subprocess.Popen`` the user's code still waits on.

An engine killed with SIGKILL cannot end its tree; its launcher sweeps what
it leaves (:func:`par.process.sweep`).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

if sys.platform.startswith("linux"):
    import ctypes  # for prctl: at import, so that a fork server's engines share it

log = logging.getLogger("par.engine")

PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
GRACE = 2.0  # seconds the tree gets between SIGTERM and SIGKILL


def adopt_orphans() -> None:
    """Make this process the reaper of its orphaned descendants (on Linux)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning(
            "cannot adopt orphaned processes (prctl: %s): a daemon a task starts "
            "may outlive the engine",
            os.strerror(ctypes.get_errno()),
        )


def _has_children() -> bool:
    """Whether this process has any child, running or exited, without reaping one."""
    if not hasattr(os, "waitid"):  # not on every Unix: look with psutil
        return True
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _live_descendants() -> list[Any]:
    import psutil

    try:
        tree = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    live = []
    for proc in tree:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                live.append(proc)
        except psutil.Error:
            pass
    return live


def end_descendants(grace: float = GRACE) -> None:
    """End every process below this one: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if not _has_children():  # the common case, and without importing psutil
        return
    from ..process import end_processes

    ended, killed = end_processes(_live_descendants, grace)
    if ended:
        log.info(
            "ended %d process(es) the engine's tasks started (pids %s)%s",
            len(ended),
            ", ".join(str(p.pid) for p in ended),
            f"; {killed} only with SIGKILL" if killed else "",
        )
