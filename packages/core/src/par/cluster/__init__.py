"""par.Cluster: a controller and its engine sets, started, grown and stopped through
launcher plugins. :mod:`par.cluster.cluster` holds the class and a map of the modules
beside it."""

from .cluster import Cluster, Stopped, stop_by_id
from .previous import ClusterCrashed

__all__ = ["Cluster", "ClusterCrashed", "Stopped", "stop_by_id"]
