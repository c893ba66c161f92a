"""joblib.Parallel on par engines (skipped where joblib is not installed)."""

from __future__ import annotations

import par
import pytest

joblib = pytest.importorskip("joblib")


def engine_pid(x: int) -> tuple[int, int]:
    import os

    return x, os.getpid()


def test_joblib_backend_runs_on_engines(rc: par.Client) -> None:
    par.register_joblib_backend()
    view = rc.load_balanced_view()
    with joblib.parallel_config(backend="par", view=view):
        out = joblib.Parallel()(joblib.delayed(engine_pid)(i) for i in range(40))
    assert [x for x, _ in out] == list(range(40))
    engine_pids = set(rc[:].apply_sync(lambda: __import__("os").getpid()))
    assert {p for _, p in out} <= engine_pids


def test_view_registers_itself_and_errors_come_back(rc: par.Client) -> None:
    rc.load_balanced_view().register_joblib_backend("par-view")

    def fail(x: int) -> int:
        raise ValueError(x)

    with joblib.parallel_config(backend="par-view"):
        assert joblib.Parallel()(joblib.delayed(abs)(-i) for i in range(3)) == [0, 1, 2]
        with pytest.raises(par.RemoteError, match="ValueError"):
            joblib.Parallel()(joblib.delayed(fail)(i) for i in range(3))


def test_the_backend_answers_to_ipyparallels_name(rc: par.Client) -> None:
    rc.load_balanced_view().register_joblib_backend()
    with joblib.parallel_config(backend="ipyparallel"):
        out = joblib.Parallel()(joblib.delayed(engine_pid)(i) for i in range(8))
    engine_pids = set(rc[:].apply_sync(lambda: __import__("os").getpid()))
    assert [x for x, _ in out] == list(range(8)) and {p for _, p in out} <= engine_pids
