"""Data publication: publish_data in a task, ar.data on the client while it runs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import par
import pytest
from par.datapub import publish_data


def wait_for(condition: object, timeout: float = 30.0) -> None:
    """Poll until ``condition()`` is true (a deadline against hangs, not a timing check)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


def simulate(go_on: str) -> str:
    """Publish progress, then wait until the client has seen it and says go on."""
    import os
    import time

    import numpy as np
    from par.datapub import publish_data

    for step in range(3):
        publish_data({"step": step, "field": np.full(4, step)})
    while not os.path.exists(go_on):
        time.sleep(0.01)
    publish_data({"step": 3, "done": True})
    return "finished"


def test_published_data_arrives_while_the_task_runs(rc: par.Client, tmp_path: Path) -> None:
    go_on = tmp_path / "go_on"
    ar = rc.load_balanced_view().apply_async(simulate, str(go_on))
    assert isinstance(ar.data, dict)
    wait_for(lambda: ar.data.get("step") == 2)
    assert not ar.ready(), "the data came while the task still ran"
    assert ar.metadata["data"] is ar.data
    np.testing.assert_array_equal(ar.data["field"], np.full(4, 2))
    go_on.touch()
    assert ar.get(timeout=30) == "finished"
    assert ar.data["step"] == 3 and ar.data["done"] is True
    assert "field" in ar.data, "publications merge: keys published earlier stay"


def test_data_published_at_the_end_rides_in_the_reply(rc: par.Client) -> None:
    dv = rc[:]
    ar = dv.execute(
        "from par.datapub import publish_data\nfor i in range(5):\n    publish_data(dict(i=i))",
        block=True,
    )
    assert ar.data == [{"i": 4}] * len(dv)

    def big_result_and_big_data() -> np.ndarray:
        import numpy as np
        from par.datapub import publish_data

        field = np.arange(100_000, dtype=np.float64)  # large: travels as its own frame
        publish_data({"field": field})
        field *= -1  # changing it after publishing does not change what was published
        return np.ones(50_000)

    ar = rc[0].apply_async(big_result_and_big_data)
    np.testing.assert_array_equal(ar.get(), np.ones(50_000))
    np.testing.assert_array_equal(ar.data["field"], np.arange(100_000, dtype=np.float64))


def test_publish_data_misuse() -> None:
    with pytest.raises(RuntimeError, match="inside a task"):
        publish_data({"x": 1})
    with pytest.raises(RuntimeError, match="inside a task"):
        par.datapub.publish_data({"x": 1})


def test_publish_data_misuse_in_a_task(rc: par.Client) -> None:
    with pytest.raises(par.RemoteError, match="TypeError"):
        rc[0].apply_sync(lambda: publish_data([("x", 1)]))  # type: ignore[arg-type]
    with pytest.raises(par.RemoteError, match="SerializationError"):
        rc[0].apply_sync(lambda: publish_data({"lock": __import__("threading").Lock()}))
