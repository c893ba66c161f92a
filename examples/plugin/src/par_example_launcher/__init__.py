"""par launcher plugin ``example``: niced local engines, each with its own environment.

This module is what the ``par`` entry point names (see ``pyproject.toml``)::

    [project.entry-points.par]
    example = "par_example_launcher"

par imports it only when someone asks for a launcher named ``example`` (or
runs ``par launchers``), then calls the hook below, which hands par the
launcher class. The class itself lives in :mod:`par_example_launcher.launcher`.
"""

from __future__ import annotations

from par.hookspecs import hookimpl
from par.plugins import LauncherRegistry

from .launcher import NicedEngineSetLauncher

__all__ = ["NicedEngineSetLauncher"]


@hookimpl
def par_register_launchers(register: LauncherRegistry) -> None:
    """Give par the ``example`` engine launcher (a plugin may register several classes)."""
    register(NicedEngineSetLauncher)
