"""ClusterManager: the clusters of this PAR_HOME by id, as ipyparallel's ClusterManager.

ipyparallel keys its clusters ``"profile:cluster_id"``; par has no profiles, so a
cluster's key is its cluster id. ``load_clusters`` finds the clusters that
``par start`` (or a :class:`~par.Cluster` in another process) recorded under
PAR_HOME; ``new_cluster`` makes one that is not started yet.
"""

from __future__ import annotations

import logging
from typing import Any

from . import paths
from .cluster import Cluster
from .errors import ClusterError
from .plugins import PluginError

log = logging.getLogger("par.cluster_manager")


class ClusterManager:
    """Clusters by id: those recorded under PAR_HOME and those made here."""

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {}

    def load_clusters(self) -> dict[str, Cluster]:
        """Add the clusters recorded under PAR_HOME, drop those that have stopped; return all."""
        for key, cluster in list(self.clusters.items()):
            # a cluster made here and not started yet has no controller: keep it
            if cluster.controller is not None and not cluster.controller.running():
                del self.clusters[key]
        for cluster_id in paths.list_cluster_ids():
            if cluster_id in self.clusters:
                continue
            try:
                self.clusters[cluster_id] = Cluster.from_file(cluster_id)
            except (ClusterError, PluginError, OSError, ValueError, KeyError) as exc:
                log.warning("cluster %r left out: its files are unreadable (%s)", cluster_id, exc)
        return self.clusters

    def new_cluster(self, **kwargs: Any) -> tuple[str, Cluster]:
        """Make a cluster (not started) with :class:`~par.Cluster`'s arguments; return its key."""
        cluster = Cluster(**kwargs)
        if cluster.cluster_id in self.clusters:
            raise KeyError(f"a cluster {cluster.cluster_id!r} is already managed here")
        self.clusters[cluster.cluster_id] = cluster
        return cluster.cluster_id, cluster

    def get_cluster(self, cluster_id: str) -> Cluster:
        """The cluster with this id (KeyError if it is not managed here)."""
        return self.clusters[cluster_id]

    def remove_cluster(self, cluster_id: str) -> None:
        """Stop managing a cluster (it keeps running)."""
        del self.clusters[cluster_id]
