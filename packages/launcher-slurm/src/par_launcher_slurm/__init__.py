"""par launcher plugin ``slurm``: engines, and the controller, as Slurm batch jobs.

``par start --launcher slurm -n 16 --partition debug`` submits the controller
as a one-task job and the engines as one ``--ntasks=16`` job; ``par stop``
cancels both. ``SlurmEngineSetLauncher(...).job_script()`` previews a script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from par.hookspecs import hookimpl

from .controller import SlurmControllerLauncher
from .engines import SlurmEngineSetLauncher

if TYPE_CHECKING:
    from par.plugins import LauncherRegistry

__all__ = ["SlurmControllerLauncher", "SlurmEngineSetLauncher"]


@hookimpl
def par_register_launchers(register: LauncherRegistry) -> None:
    """Provide the ``slurm`` controller and engine launchers."""
    register(SlurmControllerLauncher)
    register(SlurmEngineSetLauncher)
