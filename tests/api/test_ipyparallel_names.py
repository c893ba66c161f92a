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
