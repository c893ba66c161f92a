"""The ssh launcher passes the conformance suite every launcher must pass, with each host's
engines forked from a fork server there (the default) and without."""

from __future__ import annotations

from typing import Any

import pytest
from par.testing import LauncherConformance

from .conftest import Sshd


class TestSSHLauncherForking(LauncherConformance):
    launcher = "ssh"
    fork = True

    @pytest.fixture
    def launcher_options(self, loopback_sshd: Sshd, ssh_options: dict[str, Any]) -> dict[str, Any]:
        return {"hosts": "127.0.0.1", "port": loopback_sshd.port, "fork": self.fork, **ssh_options}


class TestSSHLauncherSpawning(TestSSHLauncherForking):
    fork = False
