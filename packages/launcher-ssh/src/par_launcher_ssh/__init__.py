"""par launcher plugin ``ssh``: engines, and optionally the controller, on other hosts over SSH.

Uses paramiko only (no ``ssh``/``scp`` commands): the agent, key files and
``~/.ssh/config`` host aliases are honoured, and host keys are checked
against known_hosts. See ``docs/ssh.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from par.hookspecs import hookimpl

from .launcher import SSHControllerLauncher, SSHEngineSetLauncher

if TYPE_CHECKING:
    from par.plugins import LauncherRegistry

__all__ = ["SSHControllerLauncher", "SSHEngineSetLauncher"]


@hookimpl
def par_register_launchers(register: LauncherRegistry) -> None:
    """Provide the ``ssh`` controller and engine launchers."""
    register(SSHControllerLauncher)
    register(SSHEngineSetLauncher)
