"""The ssh launcher passes the conformance suite every launcher must pass."""

from __future__ import annotations

from typing import Any

import pytest
from par.testing import LauncherConformance, par_cluster, par_home  # noqa: F401 - fixtures

from .conftest import Sshd


class TestSSHLauncher(LauncherConformance):
    launcher = "ssh"

    @pytest.fixture
    def launcher_options(self, loopback_sshd: Sshd, ssh_options: dict[str, Any]) -> dict[str, Any]:
        return {"hosts": "127.0.0.1", "port": loopback_sshd.port, **ssh_options}
