"""A real Slurm for the slurm launcher's tests: one private munged, slurmctld and slurmd.

The daemons start once per session and stop at its end, whatever happened;
every test here runs with ``SLURM_CONF`` pointing at them. If this machine
cannot run them (not root, Slurm or munge not installed), the tests skip
and say why. ``par_cluster`` and ``par_home`` come from :mod:`par.testing`,
enabled in tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .local_slurm import LocalSlurm, SlurmUnavailable, check_machine


@pytest.fixture(scope="session", autouse=True)
def slurm() -> Iterator[LocalSlurm]:
    """The session's private Slurm, ready (its one node idle)."""
    try:
        check_machine()
    except SlurmUnavailable as exc:
        pytest.skip(f"no local Slurm: {exc}")
    local = LocalSlurm()
    old = os.environ.get("SLURM_CONF")
    try:
        local.start()
    except SlurmUnavailable as exc:
        local.stop()
        pytest.skip(f"could not start a local Slurm: {exc}")
    os.environ["SLURM_CONF"] = str(local.conf)
    try:
        yield local
    finally:
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old
        local.stop()


@pytest.fixture(autouse=True)
def no_jobs_left(slurm: LocalSlurm) -> Iterator[None]:
    """Each test must leave no job behind (a leak would also block the next test's job)."""
    yield
    left = slurm.wait_no_jobs(30)
    if left:
        slurm.cancel_all()
    assert left == [], f"the test left jobs in the queue: {left}"
