"""The plugin contract of par: the one file a launcher author reads.

A plugin is a module registered in the ``par`` entry-point group::

    [project.entry-points.par]
    slurm = "par_launcher_slurm"

that implements the hook below with ``@par.hookimpl``. The module is
imported only when par needs a launcher the built-in plugins do not
provide, so a broken plugin cannot slow down or break the others (it is
reported and skipped). ``PAR_LOAD_PLUGINS=name1,name2`` limits which
entry points load (empty: none).

par reports the events ``starting``, ``running``, ``failed`` and ``stopped``
around every launcher; a launcher may report its own with
``self.emit(name, **details)`` (the Slurm launcher reports ``submitted`` with
its job id). Engines registering or lost are not launcher events: the
controller publishes those to clients (``Client.subscribe_events``).

A launcher is a class deriving from :class:`par.launcher.ControllerLauncher`
or :class:`par.launcher.EngineSetLauncher` with a unique ``PLUGIN_NAME``,
its ``OPTIONS`` and the lifecycle methods ``start``, ``stop``, ``signal``,
``running``, ``to_dict`` / ``from_dict`` (see :mod:`par.launcher`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .plugins import LauncherRegistry

hookspec = pluggy.HookspecMarker("par")
hookimpl = pluggy.HookimplMarker("par")


@hookspec
def par_register_launchers(register: LauncherRegistry) -> None:
    """Called once when par first needs launchers: call ``register(cls)`` for each class.

    ``register`` is a :class:`par.plugins.LauncherRegistry`.
    """


@hookspec
def par_launcher_event(event: dict[str, Any]) -> None:
    """Called for each launcher lifecycle event (starting, running, failed, stopped, and any
    event a launcher reports with ``emit``).

    ``event`` has ``time``, ``cluster_id``, ``launcher`` (its PLUGIN_NAME), ``kind``
    ('controller' or 'engines'), ``event`` and any details the launcher added. The same
    events are appended to the cluster's ``events.jsonl``, which ``par monitor`` shows.
    """
