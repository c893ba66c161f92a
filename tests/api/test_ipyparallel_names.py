"""Names ipyparallel programs import, at the paths they import them from."""

from __future__ import annotations

import par
import pytest


def test_error_module_names_the_exceptions_engines_raise(rc: par.Client) -> None:
    from par.error import CompositeError, RemoteError

    def fail() -> None:
        raise KeyError("missing")

    with pytest.raises(par.error.RemoteError) as one:
        rc.load_balanced_view().apply_sync(fail)
    assert one.value.ename == "KeyError" and isinstance(one.value, RemoteError)
    with pytest.raises(CompositeError) as several:
        rc[:].apply_sync(fail)
    assert len(several.value.elist) == len(rc.ids)
    assert par.error.EngineError is par.EngineError


def test_cluster_manager_finds_running_clusters_and_makes_new_ones() -> None:
    manager = par.ClusterManager()
    key, cluster = manager.new_cluster(n=1, cluster_id="managed")
    assert key == "managed" and manager.get_cluster("managed") is cluster
    with pytest.raises(KeyError):
        manager.new_cluster(cluster_id="managed")
    with cluster as rc:
        assert rc[:].apply_sync(lambda: 1) == [1]
        other = par.ClusterManager().load_clusters()
        assert other["managed"].controller is not None and other["managed"].controller.running()
        assert manager.load_clusters()["managed"] is cluster
    assert "managed" not in manager.load_clusters()
    assert "managed" not in par.ClusterManager().load_clusters()
    manager.new_cluster(cluster_id="later")
    manager.remove_cluster("later")
    with pytest.raises(KeyError):
        manager.get_cluster("later")
