"""par launcher plugin ``mpi``: engines (and, if wanted, the controller) as MPI ranks under mpiexec.

``par start --launcher mpi -n 16`` or ``par.Cluster(engines="mpi", n=16)``.
The launcher classes are imported only when par asks for them, because
every rank imports this package before it runs its engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from par.hookspecs import hookimpl

if TYPE_CHECKING:
    from par.plugins import LauncherRegistry


@hookimpl
def par_register_launchers(register: LauncherRegistry) -> None:
    """Provide the ``mpi`` controller and engine launchers."""
    from .controller import MPIControllerLauncher
    from .engines import MPIEngineSetLauncher

    register(MPIControllerLauncher)
    register(MPIEngineSetLauncher)
