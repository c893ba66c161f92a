"""Names ipyparallel programs import, at the paths they import them from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import par
import pytest
from par import serialize


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


def test_deserialize_object_reads_a_records_frames(rc: par.Client) -> None:
    ar = rc[0].apply_async(lambda: {"sum": np.arange(100_000).sum(), "big": np.ones(20_000)})
    value = ar.get(timeout=30)
    (rec,) = rc.db_query({"msg_id": ar.msg_ids[0]}, keys=["result_buffers"])
    got, rest = serialize.deserialize_object(rec["result_buffers"])
    assert got["sum"] == value["sum"] and np.array_equal(got["big"], value["big"])
    assert rest == []
    data, bufs = serialize.dumps(np.zeros(10_000))
    got, rest = serialize.deserialize_object([data, *[b.raw() for b in bufs], b"extra"])
    assert np.array_equal(got, np.zeros(10_000)) and rest == [b"extra"]


def test_use_dill_sends_a_closure_over_a_file_open_for_writing(
    rc: par.Client, tmp_path: Path
) -> None:
    pytest.importorskip("dill")
    path = tmp_path / "log.txt"
    log = path.open("a")

    def note(x: int) -> int:
        log.write(f"{x}\n")
        log.flush()
        return x

    def opened_there(name: str) -> object:
        held = open(name, "a")  # noqa: SIM115 (the engine's result holds it open)
        return lambda: held.name

    dv = rc[0]
    with pytest.raises(serialize.SerializationError, match="opened for reading"):
        dv.apply_sync(note, 1)  # cloudpickle refuses an open file
    dv.use_dill()
    try:
        assert dv.apply_sync(note, 2) == 2
        assert dv.apply_sync(opened_there, str(path))() == str(path)  # the engine sends dill too
    finally:
        dv.use_pickle()
    with pytest.raises(serialize.SerializationError, match="opened for reading"):
        dv.apply_sync(note, 3)  # cloudpickle again, here and on the engine
    log.close()
    assert path.read_text() == "2\n"
