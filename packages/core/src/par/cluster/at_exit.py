"""Clusters this process started, stopped when it exits (ipyparallel's ``shutdown_atexit``).

A script that starts a cluster and ends without stopping it (it returned, raised, or
was interrupted) would leave a controller and engines running with no one to use
them. So a :class:`~par.Cluster` whose controller this process started is kept here
until it is stopped, and stopped at exit if it still runs. The set holds the clusters
themselves, not weak references: ``par.Cluster(n=4).start_and_connect_sync()`` keeps
no reference to its cluster, which must stop all the same. A cluster loaded from its
file (``Cluster.from_file``), or started with ``shutdown_atexit=False`` (``par start
--daemonize``), is left running. A forked child leaves its parent's clusters alone.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cluster import Cluster

log = logging.getLogger("par.cluster")

_started: dict[Cluster, int] = {}  # a cluster, and the pid of the process that started it


def keep(cluster: Cluster) -> None:
    """Stop ``cluster`` when this process exits, unless it was stopped before."""
    _started[cluster] = os.getpid()


def forget(cluster: Cluster) -> None:
    """``cluster`` was stopped: nothing to do for it at exit."""
    _started.pop(cluster, None)


@atexit.register
def _stop_started() -> None:
    for cluster, pid in list(_started.items()):
        if pid != os.getpid():
            continue
        try:
            if cluster.controller_running() or cluster.engines_running():
                cluster.stop_cluster_sync()
        except Exception:  # the others still stop
            log.exception("could not stop cluster %r at exit", cluster.cluster_id)
