"""The example launcher passes par's conformance suite, and its two options do what they say.

Run from the plugin's directory: ``python -m pytest``. The fixtures come from
:mod:`par.testing`, enabled by ``pytest_plugins`` in the top-level ``conftest.py``.
"""

from __future__ import annotations

import os

from par.testing import ClusterFactory, LauncherConformance


class TestExampleLauncher(LauncherConformance):
    """Every check a launcher must pass: start, stop, killed engine, restore, signals."""

    launcher = "example"
    options = {"nice": 5, "env": "EXAMPLE_ENGINE={i}"}


def test_engines_are_niced_and_get_their_own_environment(par_cluster: ClusterFactory) -> None:
    _, rc = par_cluster(3, engines="example", nice=7, env="OMP_NUM_THREADS=1,GPU={i}")
    expected = min(os.nice(0) + 7, 19)  # nice adds to the niceness this process already has
    assert rc[:].apply_sync(os.nice, 0) == [expected] * 3
    assert rc[:].apply_sync(os.getenv, "OMP_NUM_THREADS") == ["1"] * 3
    by_index = {e["info"]["example_index"]: eid for eid, e in rc.engines().items()}
    assert sorted(by_index) == [0, 1, 2]
    for index, engine_id in by_index.items():
        assert rc[engine_id].apply_sync(os.getenv, "GPU") == str(index)
