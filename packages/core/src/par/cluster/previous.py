"""What a start finds under its cluster id: a cluster running, one crashed, or leftovers.

A cluster id is one cluster at a time. Before a start makes the cluster's folder, it
looks at what is there:

- a cluster of this id whose controller runs: the start is refused;
- a connection file with no controller (a controller that stops removes its file, so
  this one crashed): :class:`ClusterCrashed`, which says how many of its engines still
  run and whether it can be restored (``par start --restore``) or must be stopped;
- anything else is what a stopped cluster left (its controller stopped by a client,
  say): its processes are ended and its files kept aside (see :mod:`par.leftovers`).
  A task database is never deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import leftovers, paths
from ..errors import ClusterError


class ClusterCrashed(ClusterError):
    """A cluster of this id lost its controller without being stopped."""

    def __init__(self, cluster_id: str, engines: int, restorable: bool) -> None:
        self.cluster_id, self.engines, self.restorable = cluster_id, engines, restorable
        flag = "" if cluster_id == paths.DEFAULT_CLUSTER_ID else f" --cluster-id {cluster_id}"
        running = f" and {engines} of its engines still run" if engines else ""
        restore = f"bring it back with `par start --restore{flag}`, or " if restorable else ""
        super().__init__(
            f"cluster {cluster_id!r} lost its controller{running}: {restore}end it with "
            f"`par stop{flag}` and start again (its records and logs are kept)"
        )


def make_way(cluster_id: str, controller_running: Callable[[], bool]) -> Path | None:
    """Clear the folder of ``cluster_id`` for a new start; return where what an earlier
    cluster left was kept (None: nothing was left).

    ``controller_running`` says whether the earlier cluster's controller runs. Raise
    ClusterError if it does, :class:`ClusterCrashed` if that cluster crashed.
    """
    if not paths.cluster_dir(cluster_id).exists():
        return None
    if controller_running():
        raise ClusterError(
            f"cluster {cluster_id!r} is already running: stop it with "
            f"`par stop --cluster-id {cluster_id}` or choose another --cluster-id"
        )
    conn = paths.connection_file(cluster_id)
    strays = leftovers.processes(conn)
    if conn.exists():  # a controller that stops removes it: this one crashed
        running = len(leftovers.engines(strays))
        restorable = paths.cluster_file(cluster_id).exists()
        raise ClusterCrashed(cluster_id, running, restorable)
    leftovers.stop(strays)
    return leftovers.clear(cluster_id)
