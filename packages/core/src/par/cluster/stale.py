"""Finding and clearing the clusters nothing serves any more (``par clean``).

A cluster's folder outlives its processes when they end without a stop: a
controller started by hand and killed, a machine that rebooted, a ``par start``
killed before it wrote its files. ``par list`` then shows the cluster, and a
controller that crashed keeps its connection file so that it can be restored.

A cluster is *stale* when nothing serves it: no controller runs (neither its
launcher's nor the one its connection file names), its launchers run no engine,
and no par process of this user was started on its connection file. Only such a
cluster is cleared, as ``par stop`` clears one (:func:`par.leftovers.clear`: its task
database, and after a crash its logs, are kept aside). One whose controller died
while engines still run is left, with what to do: restore it or stop it. A folder
with neither a cluster nor a connection file is left while its events say a
controller is starting (a start under way has made the folder but not its files).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import leftovers, paths
from ..errors import ClusterError
from ..launcher import read_events
from ..plugins import PluginError
from .cluster import Cluster


@dataclass
class Cleaned:
    """What ``par clean`` found of one cluster, and did."""

    cluster_id: str
    removed: bool
    reason: str  # why it was removed, or why it was left
    kept: Path | None = None  # where its database (and, after a crash, logs) went


def _starting(cluster_id: str) -> bool:
    """Whether the last controller event of a cluster says it is starting."""
    events = read_events(paths.cluster_dir(cluster_id))
    controller = [e["event"] for e in events if e.get("kind") == "controller" and "event" in e]
    return bool(controller) and controller[-1] in ("starting", "restoring")


def _judge(cluster_id: str) -> Cleaned | None:
    """Clear one cluster if it is stale; None if it is served (running)."""
    conn, record = paths.connection_file(cluster_id), paths.cluster_file(cluster_id)
    try:
        cluster: Cluster | None = Cluster.from_file(cluster_id)
    except (ClusterError, OSError, ValueError, KeyError, TypeError, PluginError):
        cluster = None  # neither file, or an unreadable one: the process table decides
    if cluster is not None and cluster.controller_running():
        return None
    if cluster is None and leftovers.named_controller(conn) is not None:
        return None
    procs = leftovers.processes(conn)
    # the launchers count engines elsewhere too; the process table those no launcher recorded
    recorded = cluster.engines_running() if cluster is not None else 0
    engines = max(recorded, len(leftovers.engines(procs)))
    if engines:
        flag = "" if cluster_id == paths.DEFAULT_CLUSTER_ID else f" --cluster-id {cluster_id}"
        restore = f"`par start --restore{flag}` brings it back, " if record.exists() else ""
        return Cleaned(
            cluster_id,
            False,
            f"its controller is gone but {engines} engine process(es) still run: "
            f"{restore}`par stop{flag}` ends it",
        )
    if procs:  # a controller that has not written its connection file yet
        return None
    if conn.exists():
        reason = "its controller is gone (killed, or its machine restarted)"
    elif record.exists():
        reason = "its controller has stopped"
    elif _starting(cluster_id):
        return Cleaned(cluster_id, False, "a start seems under way (its controller is starting)")
    else:
        reason = "it holds only leftover files (no cluster or connection file)"
    return Cleaned(cluster_id, True, reason, leftovers.clear(cluster_id, crashed=conn.exists()))


def clean() -> list[Cleaned]:
    """Clear every stale cluster under ``$PAR_HOME``; say what was removed and left."""
    return [c for c in map(_judge, paths.cluster_folders()) if c is not None]
