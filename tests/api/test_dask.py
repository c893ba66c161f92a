"""``Client.become_dask``: the engines as the workers of a dask.distributed cluster
(skipped where distributed is not installed)."""

from __future__ import annotations

import par
import pytest
from par import Reference

pytest.importorskip("distributed")


def test_engines_become_dask_workers_and_stop_being_them(rc: par.Client) -> None:
    dask = rc.become_dask()
    try:
        kinds = rc[:].apply_sync(lambda w: type(w).__name__, Reference("distributed_worker"))
        assert kinds == ["Worker"] * len(rc.ids)
        assert len(dask.scheduler_info()["workers"]) == len(rc.ids)
        squares = dask.map(lambda x: x * x, range(10))
        assert dask.submit(sum, squares).result(timeout=60) == 285
    finally:
        dask.close()
        rc.stop_dask()
    with pytest.raises(par.CompositeError, match="NameError"):
        rc[:].apply_sync(lambda w: w, Reference("distributed_worker"))
    assert rc.stop_distributed == rc.stop_dask and rc.become_distributed == rc.become_dask


def test_become_dask_on_some_engines_with_worker_options(rc: par.Client) -> None:
    dask = rc.become_dask(targets=[0, 1], nthreads=2)
    try:
        info = dask.scheduler_info()["workers"]
        assert sorted(w["nthreads"] for w in info.values()) == [2, 2]
        assert dask.submit(lambda: 3).result(timeout=60) == 3
    finally:
        dask.close()
        rc.stop_dask(targets=[0, 1])


def test_closing_the_client_stops_its_dask_scheduler(cluster: par.Cluster) -> None:
    import distributed

    with cluster.connect_client_sync() as rc:
        dask = rc.become_dask(targets=[0])
        address = dask.scheduler.address
        dask.close()
    with pytest.raises(OSError):
        distributed.Client(address, timeout=2)  # the scheduler went with its client
    with cluster.connect_client_sync() as rc:
        rc.stop_dask(targets=[0])  # the engine's worker, left waiting for it
        with pytest.raises(par.RemoteError, match="NameError"):
            rc[0].apply_sync(lambda w: w, Reference("distributed_worker"))
