"""The controller's look at the process whose end stops the cluster (``--owner``):
through a pidfd on Linux, through psutil where there is none."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from par.controller.owner import Owner


@pytest.mark.parametrize("pidfd", [True, False])
def test_the_owner_is_gone_once_it_ends_reaped_or_not(
    pidfd: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pidfd:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    proc = subprocess.Popen(["sleep", "1"])
    owner = Owner(proc.pid)
    assert not owner.gone()
    deadline = time.monotonic() + 30
    while not owner.gone():  # a zombie, not reaped yet: it has ended all the same
        assert time.monotonic() < deadline, "still not gone 30 s after a 1 s sleep"
        time.sleep(0.05)
    assert proc.poll() == 0  # reaped only now
    assert owner.gone()
