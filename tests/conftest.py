"""Shared fixtures: every test runs with its own PAR_HOME, and clusters are real processes.

par's own fixtures for launcher tests (``par_cluster``, a per-test ``par_home``)
come from :mod:`par.testing`, enabled below as a plugin author enables them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import par
import pytest
from par import paths

# tests/compat holds the shim and runner of ipyparallel's tests (`nox -s compat`), not tests
collect_ignore = ["compat"]

pytest_plugins = ["par.testing"]


@pytest.fixture(autouse=True, scope="session")
def session_par_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep cluster files of the test run away from the user's own."""
    home = tmp_path_factory.mktemp("par_home")
    old = os.environ.get("PAR_HOME")
    os.environ["PAR_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("PAR_HOME", None)
    else:
        os.environ["PAR_HOME"] = old


@pytest.fixture(autouse=True)
def _send_test_functions_by_value(request: pytest.FixtureRequest) -> None:
    """Engines cannot import test modules: pickle their functions by value, as for ``__main__``."""
    module = request.module
    if module.__name__ not in _registered:
        cloudpickle.register_pickle_by_value(module)
        _registered.add(module.__name__)


_registered: set[str] = set()


@pytest.fixture(scope="module")
def cluster() -> Iterator[par.Cluster]:
    """A controller and 4 local engines, shared by the tests of one module."""
    c = par.Cluster(n=4)
    c.start_and_connect_sync()
    try:
        yield c
    finally:
        c.stop_cluster_sync()


@pytest.fixture(scope="module")
def rc(cluster: par.Cluster) -> Iterator[par.Client]:
    """A client of the module's cluster."""
    client = cluster.connect_client_sync()
    client.wait_for_engines(4, timeout=30)
    yield client
    client.close()


@pytest.fixture
def small_cluster() -> Iterator[tuple[par.Cluster, par.Client]]:
    """Two engines under a controller with fast heartbeats, for destructive tests."""
    c = par.Cluster(n=2, controller_args=["--heartbeat", "0.2", "--heartbeat-timeout", "1.5"])
    rc = c.start_and_connect_sync()
    try:
        yield c, rc
    finally:
        c.stop_cluster_sync()


def par_cli(*args: str) -> list[str]:
    """The command line running ``par`` with this interpreter."""
    return [sys.executable, "-m", "par", *args]


def run_par(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``par ARGS`` as a user would, capturing its output."""
    return subprocess.run(par_cli(*args), capture_output=True, text=True, timeout=timeout)


def cluster_pids(cluster_id: str) -> list[int]:
    """The controller's and every engine's pid, as the cluster's file records them."""
    data = json.loads(paths.cluster_file(cluster_id).read_text())
    pids = [data["controller"]["state"]["process"]["pid"]]
    for es in data["engines"].values():
        pids += [p["pid"] for p in es["state"]["processes"]]
    return pids
