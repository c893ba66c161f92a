"""par launcher plugin ``ssh``: engines on other hosts over SSH (not yet available)."""

from __future__ import annotations

from typing import Any

from par.hookspecs import hookimpl
from par.launcher import EngineSetLauncher, LauncherError


class SSHEngineSetLauncher(EngineSetLauncher):
    """Engines on remote hosts over SSH: not yet available in this version."""

    PLUGIN_NAME = "ssh"

    def start(self) -> None:
        """Refuse clearly: this launcher is not implemented yet."""
        raise LauncherError("the ssh launcher is not yet available in this version of par")

    def stop(self, timeout: float = 10.0) -> None:
        """Nothing was started."""

    def signal(self, sig: int) -> None:
        """Nothing was started."""

    def running(self) -> bool:
        """Nothing was started."""
        return False


@hookimpl
def par_register_launchers(register: Any) -> None:
    """Provide the ``ssh`` engine launcher."""
    register(SSHEngineSetLauncher)
