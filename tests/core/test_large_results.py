"""Large results: the engine's reply batching counts their bytes, and a client takes one
in without holding it twice."""

from __future__ import annotations

import pickle

import par
from par import serialize
from par.engine.app import BATCH_BYTES, Outbox
from par.protocol import Session


def two_megabytes() -> bytes:
    return b"r" * (2 << 20)


def test_large_results_come_back_without_the_engine_calling_them_malformed(
    cluster: par.Cluster, rc: par.Client
) -> None:
    lv = rc.load_balanced_view()
    assert lv.map_sync(lambda _: two_megabytes(), range(8)) == [two_megabytes()] * 8
    assert rc[:].apply_sync(two_megabytes) == [two_megabytes()] * 4
    logs = sorted((cluster.context.cluster_dir / "logs").glob("engine-*.log"))
    assert logs
    for log in logs:
        assert "malformed" not in log.read_text(), log.read_text()[-2000:]


def test_a_reply_larger_than_the_batch_bound_is_due_at_once() -> None:
    data, buffers = serialize.dumps(two_megabytes())
    assert buffers and isinstance(buffers[0], pickle.PickleBuffer)
    outbox = Outbox(Session(b"k" * 32))
    outbox.add(({"t": "reply", "id": "a"}, [data], buffers), None)
    assert outbox.nbytes > BATCH_BYTES
    assert outbox.due()
