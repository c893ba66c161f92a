"""Exceptions: a CompositeError's elist and tracebacks, shaped as ipyparallel shapes them."""

from __future__ import annotations

import par
import pytest


def fail(x: int) -> int:
    raise ValueError(f"bad {x}")


def test_composite_error_elist_holds_ipyparallel_tuples(rc: par.Client) -> None:
    with pytest.raises(par.CompositeError) as info:
        rc[:].apply_sync(fail, 1)
    err = info.value
    uuids = {eid: engine["uuid"] for eid, engine in rc.engines().items()}
    assert sorted(e[-1]["engine_id"] for e in err.elist) == rc.ids
    for ename, evalue, traceback, engine_info in err.elist:
        assert (ename, evalue) == ("ValueError", "bad 1") and "in fail" in traceback
        eid = engine_info["engine_id"]
        assert engine_info == {"engine_id": eid, "engine_uuid": uuids[eid], "method": "apply"}
    assert err.elist[0].ename == "ValueError"  # the tuples name their fields too
    with pytest.raises(par.RemoteError, match="bad 1") as one:
        err.raise_exception(1)
    assert one.value.engine_info == err.elist[1].engine_info


def test_composite_error_shows_at_most_tb_limit_tracebacks(
    rc: par.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(par.CompositeError) as info:
        rc.load_balanced_view().map_sync(fail, range(6))
    err = info.value
    assert len(err.elist) == 6 and err.tb_limit == 4
    lines = err.render_traceback()
    assert "\n".join(lines).count("Traceback (most recent call last)") == 4
    assert lines[-1] == "... 2 more exceptions ..."
    assert str(err).splitlines()[-1] == "... 2 more exceptions ..."
    err.tb_limit = 1
    err.print_traceback()
    printed = capsys.readouterr().out
    assert printed.count("Traceback (most recent call last)") == 1
    assert printed.rstrip().endswith("... 5 more exceptions ...")
    assert "bad 5" in "\n".join(err.render_traceback(5))
