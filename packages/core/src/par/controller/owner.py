"""The process a cluster belongs to: once it has ended, the cluster ends too.

A script that starts a cluster stops it when it exits (``shutdown_atexit``, as in
ipyparallel), but a process killed by a signal runs no exit handler: ``timeout`` or a
batch system's SIGTERM, a terminal closed under it (SIGHUP), SIGKILL, a notebook
kernel restarted. Its controller and engines then ran on with nobody to use them until
``par stop``. So the local launcher names the process that started the cluster
(``par controller --owner PID``, only for a cluster it is to stop at exit), and the
controller looks at it on its periodic checks: once it has ended, the controller stops
its engines and itself, saying why in its log.

On Linux a look polls a pidfd, which turns readable when the process ends (a few
microseconds, and a pid used again is not the same process); elsewhere psutil reads
the process's state and start time.
"""

from __future__ import annotations

import os
import select

import psutil


class Owner:
    """The process whose end stops the cluster (``pid``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._process = psutil.Process(pid)
        except psutil.NoSuchProcess:  # a mistyped pid; or it ended before this one came up
            raise ValueError(
                f"--owner {pid}: no process has that pid; give the pid of a running "
                "process, or leave --owner out"
            ) from None
        # poll, not select: the hub holds thousands of descriptors, past select's 1,024
        self._pidfd: select.poll | None = None
        if hasattr(os, "pidfd_open"):
            try:
                fd = os.pidfd_open(pid)
            except OSError:  # ended since (psutil's first look says so), a kernel before
                return  # 5.3, or a sandbox that refuses it: psutil looks
            self._pidfd = select.poll()
            self._pidfd.register(fd, select.POLLIN)

    def gone(self) -> bool:
        """Whether the process has ended (a zombie its parent has not reaped yet has)."""
        if self._pidfd is not None:
            return bool(self._pidfd.poll(0))
        try:
            return not self._process.is_running() or self._process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:  # cannot tell: a cluster is never stopped on a doubt
            return False
