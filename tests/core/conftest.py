"""Fixtures of the core tests."""

from __future__ import annotations

from collections.abc import Iterator

import par
import pytest


@pytest.fixture
def small_cluster() -> Iterator[tuple[par.Cluster, par.Client]]:
    """Two engines under a controller with fast heartbeats, for destructive tests."""
    c = par.Cluster(n=2, controller_args=["--heartbeat", "0.2", "--heartbeat-timeout", "1.5"])
    rc = c.start_and_connect_sync()
    try:
        yield c, rc
    finally:
        c.stop_cluster_sync()
