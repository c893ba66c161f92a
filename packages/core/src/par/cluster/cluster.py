"""Cluster: start, grow, signal, stop and restore a controller and its engine sets.

The cluster is the one object a user holds; the work is done by the modules beside
it, one role each:

- the controller, its launcher, and the cluster file that records every launcher's
  state (so a cluster started here can be listed, extended and stopped from any other
  process) are here, with starting, restoring, connecting and stopping;
- :mod:`.engine_sets` keeps the engine sets on record and acts on them;
- :mod:`.waiting` waits for engines to register; :mod:`.replacement` replaces lost ones;
- :mod:`.previous` decides what a start does with an earlier cluster of its id;
- :mod:`.one_engine` stops one engine through the controller;
- :mod:`.at_exit` stops at exit the clusters this process started and left running;
- :mod:`.async_forms` gives every method its ``async`` form, as in ipyparallel.

A cluster id is one cluster at a time: a start finds what runs or crashed under its id
before it begins (a crashed one is restored with :meth:`Cluster.restore_controller_sync`
or stopped first), and a stop ends, besides what the launchers recorded, every process
that still serves the cluster (see :mod:`par.leftovers`). Neither ever deletes a task
database.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import leftovers, paths
from ..client.client import Client
from ..errors import ClusterError
from ..launcher import ControllerLauncher, EngineSetLauncher, LaunchContext
from ..plugins import PluginError, announce, launcher_class
from . import at_exit, one_engine, previous
from .async_forms import AsyncForms
from .engine_sets import EngineSets
from .launcher_options import engine_work_dir, from_ipyparallel_names, split_options
from .replacement import EngineReplacer
from .waiting import Progress, wait_for_engines


@dataclass
class Stopped:
    """What stopping a cluster found and kept."""

    kept: Path | None = None  # where its task database (and, after a crash, logs) went
    strays: int = 0  # processes serving it that no launcher recorded, stopped too
    unreadable: str | None = None  # what of its files could not be read, and why


def _new_cluster_id() -> str:
    return f"{int(time.time())}-{secrets.token_hex(2)}"


class Cluster(AsyncForms):
    """A controller and sets of engines, started through launcher plugins.

    ``with Cluster(n=4) as rc:`` starts a controller and 4 local engines,
    yields a connected :class:`~par.Client` and stops everything on exit.
    Every method has an ``async`` form and a ``*_sync`` form, as in ipyparallel.

    ``work_dir``: the directory the engines run their tasks in, for every engine set
    (unless :meth:`add_engines` is given another); it must exist, checked before any
    process starts (on this machine, unless the engines run elsewhere: ssh).

    ``profile`` (ipyparallel's): par has no profiles, so it names the cluster, as
    ``cluster_id`` does. ipyparallel's ``engine_launcher_class``, ``controller_launcher_class``
    (launcher names), ``controller_ip`` and ``controller_location`` are taken as par's
    ``engines``, ``controller``, ``ip`` and ``location``.

    ``shutdown_atexit`` (as ipyparallel's): a cluster whose controller this process
    started is stopped when the process exits, if it still runs (see :mod:`.at_exit`);
    False leaves it running. A cluster loaded with :meth:`from_file` is left running.
    """

    def __init__(
        self,
        n: int | None = None,
        *,
        engines: str = "local",
        controller: str = "local",
        cluster_id: str | None = None,
        controller_args: list[str] | None = None,
        engine_timeout: float = 60.0,
        restart_lost_engines: bool = False,
        work_dir: str = "",
        shutdown_atexit: bool = True,
        profile: str | None = None,
        **options: Any,
    ) -> None:
        if not engine_timeout > 0:
            raise ValueError(
                f"the engine timeout must be a positive number of seconds, not {engine_timeout}"
            )
        engines, controller, options = from_ipyparallel_names(engines, controller, options)
        self.n = n
        cluster_id = paths.cluster_id_of(cluster_id, profile)
        self.cluster_id = paths.check_cluster_id(cluster_id or _new_cluster_id())
        self.engine_launcher = engines
        self.controller_launcher = controller
        self.controller_args = list(controller_args or [])
        self.engine_timeout = engine_timeout
        self.restart_lost_engines = restart_lost_engines
        self.shutdown_atexit = shutdown_atexit
        self._replacer = EngineReplacer(lambda: self.add_engines(1))
        self._controller_cls = launcher_class("controller", controller)
        self._engine_cls = launcher_class("engines", engines)
        self.controller_options, self.engine_options = split_options(
            options, self._controller_cls, self._engine_cls
        )
        self.work_dir = engine_work_dir(work_dir, self._engine_cls)
        self.controller: ControllerLauncher | None = None
        self._sets = EngineSets(self.context, self.write_cluster_file)
        self._client: Client | None = None
        self.previous: Path | None = None  # where a start kept what an earlier cluster left

    @property
    def engines(self) -> dict[str, EngineSetLauncher]:
        """This cluster's engine-set launchers, by engine-set id."""
        return self._sets.launchers

    # ---- files --------------------------------------------------------------------------------

    @property
    def context(self) -> LaunchContext:
        """What launchers are told about this cluster."""
        return LaunchContext(
            self.cluster_id,
            paths.cluster_dir(self.cluster_id),
            paths.connection_file(self.cluster_id),
            on_event=announce,
            owner=os.getpid() if self.shutdown_atexit else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The cluster file's content."""
        return {
            "cluster_id": self.cluster_id,
            "created": time.time(),
            "engine_timeout": self.engine_timeout,
            "controller_args": self.controller_args,
            "work_dir": self.work_dir,
            "controller": None
            if self.controller is None
            else {"launcher": self.controller.PLUGIN_NAME, "state": self.controller.to_dict()},
            "engines": self._sets.to_dict(),
        }

    def write_cluster_file(self) -> None:
        """Record the launchers' state (owner-only)."""
        paths.write_private_json(paths.cluster_file(self.cluster_id), self.to_dict())

    def remove_cluster_file(self) -> None:
        """Remove the cluster file, as ipyparallel's does: a cluster still running is then
        known by its connection file alone (``par stop`` ends its processes all the same,
        found by it, but ``par list`` no longer names its launchers)."""
        paths.cluster_file(self.cluster_id).unlink(missing_ok=True)

    def update_cluster_file(self) -> None:
        """Write the cluster file while the controller or an engine of the cluster runs,
        else remove it, as ipyparallel's does (par's own methods keep the file current)."""
        if self.controller_running() or self.engines_running():
            self.write_cluster_file()
        else:
            self.remove_cluster_file()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cluster:
        """Rebuild a cluster (and its launchers) from a cluster file's content."""
        ctl: dict[str, Any] = data.get("controller") or {}
        sets: dict[str, Any] = data.get("engines") or {}
        first = str(next(iter(sets.values()), {"launcher": "local"})["launcher"])
        self = cls(
            cluster_id=data["cluster_id"],
            controller=ctl.get("launcher", "local"),
            engines=first,
            engine_timeout=data.get("engine_timeout", 60.0),
            controller_args=data.get("controller_args") or [],
            shutdown_atexit=False,  # another process started it
        )
        self.work_dir = str(data.get("work_dir", ""))  # checked when it was given
        if ctl:
            self.controller = self._controller_cls.from_dict(self.context, ctl["state"])
        self._sets.merge(sets)
        return self

    @classmethod
    def from_file(cls, cluster_id: str | None = None, *, profile: str | None = None) -> Cluster:
        """Load a running cluster (the default cluster unless ``cluster_id``, or ipyparallel's
        ``profile``, names another) from its cluster file, or, where there is none, from the
        connection file of a controller started by hand (``par controller``)."""
        cluster_id = paths.cluster_id_of(cluster_id, profile) or paths.DEFAULT_CLUSTER_ID
        path = paths.cluster_file(cluster_id)
        if not path.exists():
            if paths.connection_file(cluster_id).exists():
                # no launcher started its controller
                return cls(cluster_id=cluster_id, shutdown_atexit=False)
            running = paths.list_cluster_ids()
            hint = (
                f"; running clusters: {', '.join(running)}"
                if running
                else f" (nor any other in {paths.par_home()}; `par start` starts one)"
            )
            raise ClusterError(f"no cluster {cluster_id!r} is running{hint}")
        return cls.from_dict(paths.read_json(path))

    # ---- the controller --------------------------------------------------------------------

    def start_controller_sync(self) -> None:
        """Start the controller; return once its connection file exists."""
        if self.controller is not None and self.controller.running():
            raise ClusterError(f"cluster {self.cluster_id!r} already has a running controller")
        self.previous = previous.make_way(self.cluster_id, self._earlier_running)
        paths.make_private_dir(self.context.cluster_dir)
        try:
            self._launch_controller(self.controller_args, self.controller_options, "starting")
        except BaseException:
            paths.remove_cluster_dir(self.cluster_id)
            raise

    def _earlier_running(self) -> bool:
        """Whether the controller of an earlier cluster of this id runs."""
        try:  # the earlier cluster's own launcher knows its controller; else the file names it
            earlier = Cluster.from_file(self.cluster_id)
        except Exception:  # a damaged cluster file, or neither file
            earlier = self
        return earlier.controller_running()

    def _launch_controller(self, args: list[str], options: dict[str, Any], event: str) -> None:
        """Start a controller launcher (stopping it again if its start fails) and record it;
        ``event`` says why."""
        controller = self._controller_cls(self.context, controller_args=args, **options)
        self.controller = controller
        controller.emit(event)
        try:
            controller.start()
        except BaseException as exc:
            controller.stop()
            controller.emit("failed", error=str(exc))
            raise
        controller.emit("running")
        self.write_cluster_file()
        if self.shutdown_atexit:
            at_exit.keep(self)

    def controller_running(self) -> bool:
        """Whether a controller serves this cluster: the one its launcher started, or
        any other its connection file names (one restored by hand, say)."""
        if self.controller is not None and self.controller.running():
            return True
        return leftovers.named_controller(self.context.connection_file) is not None

    def restore_controller_sync(self) -> None:
        """Start the controller of a cluster whose controller died, with the settings it
        had, on the key and ports of its connection file: the engines still running and
        the clients come back by themselves, and a ``--db sqlite`` database is read again.

        Raise ClusterError if a controller runs, or nothing is left to restore.
        """
        if self.controller_running():
            raise ClusterError(f"cluster {self.cluster_id!r} is running: nothing to restore")
        if not self.context.connection_file.exists():
            raise ClusterError(
                f"cluster {self.cluster_id!r} left no connection file to restore from: "
                "start it anew"
            )
        options = self.controller.options if self.controller is not None else {}
        self._launch_controller([*self.controller_args, "--restore"], options, "restoring")

    def stop_controller_sync(self) -> None:
        """Stop the controller."""
        if self.controller is not None:
            self.controller.stop()
            self.controller.emit("stopped")

    # ---- engines -----------------------------------------------------------------------------

    def _engine_set(
        self,
        n: int | None = None,
        launcher: str | None = None,
        work_dir: str | None = None,
        **options: Any,
    ) -> EngineSetLauncher:
        """A new, not yet started set of ``n`` engines (its launcher checks its options),
        in ``work_dir`` (default: the cluster's)."""
        n = n if n is not None else (self.n or os.cpu_count() or 1)
        cls = launcher_class("engines", launcher) if launcher else self._engine_cls
        opts = split_options(options, cls)[0] if launcher else {**self.engine_options, **options}
        where = engine_work_dir(self.work_dir if work_dir is None else work_dir, cls)
        return cls(self.context, n=n, work_dir=where, **opts)

    def start_engines_sync(
        self,
        n: int | None = None,
        launcher: str | None = None,
        work_dir: str | None = None,
        **options: Any,
    ) -> str:
        """Start a new set of ``n`` engines (in ``work_dir``, default: the cluster's);
        return its engine-set id."""
        if self.controller is None and not self.controller_running():  # not even by hand
            raise ClusterError("start the controller before engines (start_cluster does both)")
        return self._sets.start(self._engine_set(n, launcher, work_dir, **options))

    def add_engines(
        self,
        n: int = 1,
        launcher: str | None = None,
        work_dir: str | None = None,
        **options: Any,
    ) -> str:
        """Add ``n`` engines to the running cluster (in ``work_dir``, default: the
        cluster's); return the new engine-set id."""
        return self.start_engines_sync(n, launcher, work_dir, **options)

    def engines_running(self) -> int:
        """How many engines this cluster's launchers have running."""
        return self._sets.running_count()

    def engines_registered(self, timeout: float = 5.0) -> int:
        """How many engines are registered with the controller (it is asked): the live
        ones, whoever started them."""
        client = Client(paths.connection_file(self.cluster_id), timeout=timeout)
        try:
            return len(client.ids)
        finally:
            client.close()

    def wait_for_engines_sync(
        self,
        client: Client,
        n: int,
        progress: Progress | None = None,
        sets: list[str] | None = None,
    ) -> None:
        """Wait until ``n`` engines are registered; fail early, with their output, if the
        engines of ``sets`` (the sets being waited for; default: all) die."""
        watched = [self.engines[s] for s in sets] if sets is not None else self.engines.values()
        wait_for_engines(client, n, self.engine_timeout, watched, progress)

    def describe_engine_exit(self, pid: int) -> str | None:
        """What the launchers know of how the engine with this pid ended."""
        return self._sets.describe_exit(pid)

    def stop_engines_sync(self, engine_set_id: str | None = None) -> None:
        """Stop one engine set (all by default)."""
        self._sets.stop(engine_set_id)
        if self.controller is not None and paths.cluster_dir(self.cluster_id).exists():
            self.write_cluster_file()

    def restart_engines_sync(self, engine_set_id: str | None = None) -> None:
        """Stop and start again one engine set (all by default)."""
        self._sets.restart(engine_set_id)
        self.write_cluster_file()

    def signal_engines_sync(self, sig: int | str, engine_set_id: str | None = None) -> None:
        """Send a signal to the engines of one set (all by default)."""
        self._sets.signal(getattr(signal, sig) if isinstance(sig, str) else int(sig), engine_set_id)

    # ---- one engine at a time (through the controller, so any launcher's engines) -------

    def _engine_client(self) -> Client:
        if self._client is None:
            self._client = self.connect_client_sync()
        return self._client

    def stop_engine_sync(self, engine_id: int, timeout: float = 30.0) -> None:
        """Stop one engine and wait until it has left (see :mod:`par.cluster.one_engine`)."""
        conn = paths.connection_file(self.cluster_id)
        one_engine.stop_engine(self._engine_client(), engine_id, timeout, conn)

    def restart_engine_sync(self, engine_id: int) -> str:
        """Stop one engine and start a replacement (it gets a new id); return its engine set."""
        self.stop_engine_sync(engine_id)
        return self.add_engines(1)

    def signal_engine_sync(self, sig: int | str, engine_id: int) -> None:
        """Send a signal (number or name) to one engine."""
        self._engine_client().send_signal(sig, targets=[engine_id])

    # ---- the whole cluster --------------------------------------------------------------------

    def start_cluster_sync(self, n: int | None = None) -> None:
        """Start the controller, then ``n`` engines."""
        # Made first, as making a launcher checks its option values: a wrong one fails in one
        # line before any process starts, instead of after the controller is up.
        engines = self._engine_set(n)
        self.start_controller_sync()
        try:
            self._sets.start(engines)
        except BaseException:
            self.stop_cluster_sync()
            raise

    def connect_client_sync(self) -> Client:
        """A client connected to this cluster."""
        return Client(paths.connection_file(self.cluster_id), cluster=self)

    def start_and_connect_sync(
        self, n: int | None = None, progress: Progress | None = None, activate: bool = False
    ) -> Client:
        """Start the cluster, connect a client, and wait for the engines.

        With ``activate=True`` the ``%px`` magics are registered for all engines (in IPython).
        """
        n = n if n is not None else (self.n or os.cpu_count() or 1)
        self.start_cluster_sync(n)
        # a launcher may start another count than asked (ssh: the hosts' engine counts)
        return self._connect_and_wait(
            lambda: sum(es.n for es in self.engines.values()), progress, activate
        )

    def restore_and_connect_sync(self, progress: Progress | None = None) -> Client:
        """Restore the controller (:meth:`restore_controller_sync`), connect a client, and
        wait until the engines still running have come back to it."""
        self.restore_controller_sync()
        return self._connect_and_wait(self.engines_running, progress)

    def _connect_and_wait(
        self, expected: Callable[[], int], progress: Progress | None, activate: bool = False
    ) -> Client:
        """Connect this cluster's client and wait for ``expected()`` engines; stop the
        cluster if that fails, as a start that fails leaves nothing half up."""
        try:
            client = self.connect_client_sync()
            self._client = client
            if self.restart_lost_engines:
                client.subscribe_events(self._replacer.on_event)
            self.wait_for_engines_sync(client, expected(), progress)
            if activate:
                client.activate()
        except BaseException:
            self.stop_cluster_sync()
            raise
        return client

    def disconnect_client(self) -> None:
        """Close the client this cluster connected, if any (the cluster keeps running)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def stop_cluster_sync(self) -> Stopped:
        """Stop every engine set, the controller and any other process that still serves
        the cluster, and remove the cluster's files but its task database (kept aside,
        with the logs if the controller had died); say what was found and kept."""
        at_exit.forget(self)
        self._replacer.stop()
        self.disconnect_client()
        crashed = self.context.connection_file.exists() and not self.controller_running()
        stopped = Stopped()
        try:
            self._sets.stop_all()
            self.stop_controller_sync()
            strays = leftovers.processes(self.context.connection_file)
            leftovers.stop(strays)
            stopped.strays = len(strays)
        finally:
            stopped.kept = leftovers.clear(self.cluster_id, crashed)
        return stopped

    def __enter__(self) -> Client:
        return self.start_and_connect_sync()

    def __exit__(self, *exc: Any) -> None:
        self.stop_cluster_sync()

    def __repr__(self) -> str:
        return (
            f"<par.Cluster {self.cluster_id!r} engines={sum(e.n for e in self.engines.values())}>"
        )


def stop_by_id(cluster_id: str) -> Stopped:
    """Stop the cluster of this id from any process, as ``par stop`` does: through its
    launchers if its cluster file reads, and in any case every process that still
    serves it. Raise ClusterError if nothing of it is found."""
    unreadable = None
    try:
        cluster = Cluster.from_file(cluster_id)
    except (OSError, ValueError, KeyError, TypeError, PluginError) as exc:
        unreadable = f"{paths.cluster_file(cluster_id)} is unreadable ({exc})"
        cluster = Cluster(cluster_id=cluster_id)
    stopped = cluster.stop_cluster_sync()
    stopped.unreadable = unreadable
    return stopped
