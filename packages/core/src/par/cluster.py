"""Cluster: start, grow, signal, stop and restore a controller and its engine sets.

Every method has an ``async`` form and a ``*_sync`` form, as in
ipyparallel. The cluster file records each launcher's state, so a cluster
started here can be listed, extended and stopped from any other process.

A cluster id is one cluster at a time: a start finds what runs or crashed
under its id before it begins (a crashed one is restored with
:meth:`Cluster.restore_controller_sync` or stopped first), and a stop ends,
besides what the launchers recorded, every process that still serves the
cluster (see :mod:`par.leftovers`). Neither ever deletes a task database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import leftovers, paths, process
from .client.client import Client
from .errors import ClusterError
from .launcher import ControllerLauncher, EngineSetLauncher, LaunchContext, Launcher
from .plugins import PluginError, announce, launcher_class

Progress = Callable[[int, int], None]
log = logging.getLogger("par.cluster")

ENGINE_EXIT_GRACE = 10.0  # seconds a stopped engine's process gets to exit before SIGKILL
ENDED_SETS_KEPT = 16  # sets forgotten once their engines ended, still asked how they ended


class ClusterCrashed(ClusterError):
    """A cluster of this id lost its controller without being stopped."""

    def __init__(self, cluster_id: str, engines: int, restorable: bool) -> None:
        self.cluster_id, self.engines, self.restorable = cluster_id, engines, restorable
        flag = "" if cluster_id == paths.DEFAULT_CLUSTER_ID else f" --cluster-id {cluster_id}"
        running = f" and {engines} of its engines still run" if engines else ""
        restore = f"bring it back with `par start --restore{flag}`, or " if restorable else ""
        super().__init__(
            f"cluster {cluster_id!r} lost its controller{running}: {restore}end it with "
            f"`par stop{flag}` and start again (its records and logs are kept)"
        )


@dataclass
class Stopped:
    """What stopping a cluster found and kept."""

    kept: Path | None = None  # where its task database (and, after a crash, logs) went
    strays: int = 0  # processes serving it that no launcher recorded, stopped too
    unreadable: str | None = None  # what of its files could not be read, and why


def _new_cluster_id() -> str:
    return f"{int(time.time())}-{secrets.token_hex(2)}"


def _split_options(options: dict[str, Any], *classes: type[Launcher]) -> list[dict[str, Any]]:
    """Give each launcher class the options it declares; refuse the rest."""
    out: list[dict[str, Any]] = [{} for _ in classes]
    unknown = []
    for key, value in options.items():
        takers = [i for i, cls in enumerate(classes) if any(o.name == key for o in cls.OPTIONS)]
        if not takers:
            unknown.append(key)
        for i in takers:
            out[i][key] = value
    if unknown:
        known = sorted({o.name for cls in classes for o in cls.OPTIONS})
        raise TypeError(
            f"unknown option(s) {', '.join(sorted(unknown))}; "
            f"the chosen launchers accept: {', '.join(known) or 'none'}"
        )
    return out


class Cluster:
    """A controller and sets of engines, started through launcher plugins.

    ``with Cluster(n=4) as rc:`` starts a controller and 4 local engines,
    yields a connected :class:`~par.Client` and stops everything on exit.
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
        **options: Any,
    ) -> None:
        if not engine_timeout > 0:
            raise ValueError(
                f"the engine timeout must be a positive number of seconds, not {engine_timeout}"
            )
        self.n = n
        self.cluster_id = paths.check_cluster_id(cluster_id or _new_cluster_id())
        self.engine_launcher = engines
        self.controller_launcher = controller
        self.controller_args = list(controller_args or [])
        self.engine_timeout = engine_timeout
        self.restart_lost_engines = restart_lost_engines
        self._restarts: list[float] = []
        self._stopping = False
        self._controller_cls = launcher_class("controller", controller)
        self._engine_cls = launcher_class("engines", engines)
        self.controller_options, self.engine_options = _split_options(
            options, self._controller_cls, self._engine_cls
        )
        self.controller: ControllerLauncher | None = None
        self.engines: dict[str, EngineSetLauncher] = {}
        # A client may ask how an engine ended just after its set was forgotten (a restart
        # forgets the set of the engine it replaces): the last few are kept for that.
        self._ended_sets: deque[EngineSetLauncher] = deque(maxlen=ENDED_SETS_KEPT)
        self._client: Client | None = None
        self.previous: Path | None = None  # where a start kept what an earlier cluster left

    # ---- files --------------------------------------------------------------------------------

    @property
    def context(self) -> LaunchContext:
        """What launchers are told about this cluster."""
        return LaunchContext(
            self.cluster_id,
            paths.cluster_dir(self.cluster_id),
            paths.connection_file(self.cluster_id),
            on_event=announce,
        )

    def to_dict(self) -> dict[str, Any]:
        """The cluster file's content."""
        return {
            "cluster_id": self.cluster_id,
            "created": time.time(),
            "engine_timeout": self.engine_timeout,
            "controller_args": self.controller_args,
            "controller": None
            if self.controller is None
            else {"launcher": self.controller.PLUGIN_NAME, "state": self.controller.to_dict()},
            "engines": {
                set_id: {"launcher": es.PLUGIN_NAME, "state": es.to_dict()}
                for set_id, es in self.engines.items()
            },
        }

    def write_cluster_file(self) -> None:
        """Record the launchers' state (owner-only)."""
        paths.write_private_json(paths.cluster_file(self.cluster_id), self.to_dict())

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
        )
        if ctl:
            self.controller = self._controller_cls.from_dict(self.context, ctl["state"])
        self._merge_sets(sets)
        return self

    def _merge_sets(self, sets: dict[str, Any]) -> None:
        for set_id, entry in sets.items():
            if set_id not in self.engines:
                es_cls = launcher_class("engines", entry["launcher"])
                self._adopt(set_id, es_cls.from_dict(self.context, entry["state"]))

    def _adopt(self, set_id: str, es: EngineSetLauncher) -> None:
        """Make an engine set one of this cluster's, its state saved in the cluster file."""
        self.engines[set_id] = es
        es.save_state = self.write_cluster_file

    @classmethod
    def from_file(cls, cluster_id: str | None = None, *, profile: str | None = None) -> Cluster:
        """Load a running cluster from its cluster file (the default cluster's unless
        ``cluster_id``, or ipyparallel's ``profile``, names another)."""
        cluster_id = paths.cluster_id_of(cluster_id, profile) or paths.DEFAULT_CLUSTER_ID
        path = paths.cluster_file(cluster_id)
        if not path.exists():
            running = paths.list_cluster_ids()
            hint = (
                f"; running clusters: {', '.join(running)}"
                if running
                else f" (nor any other in {paths.par_home()}; `par start` starts one)"
            )
            raise ClusterError(f"no cluster {cluster_id!r} is running{hint}")
        return cls.from_dict(paths.read_json(path))

    def _reload_sets(self) -> None:
        """Pick up engine sets other processes added (so stop leaves none behind)."""
        path = paths.cluster_file(self.cluster_id)
        if path.exists():
            try:
                self._merge_sets(paths.read_json(path).get("engines") or {})
            except (OSError, ValueError):
                pass

    # ---- starting --------------------------------------------------------------------------------

    def start_controller_sync(self) -> None:
        """Start the controller; return once its connection file exists."""
        if self.controller is not None and self.controller.running():
            raise ClusterError(f"cluster {self.cluster_id!r} already has a running controller")
        self._make_way()
        paths.make_private_dir(self.context.cluster_dir)
        controller = self._controller_cls(
            self.context, controller_args=self.controller_args, **self.controller_options
        )
        self.controller = controller
        controller.emit("starting")
        try:
            controller.start()
        except BaseException as exc:
            controller.stop()
            controller.emit("failed", error=str(exc))
            paths.remove_cluster_dir(self.cluster_id)
            raise
        controller.emit("running")
        self.write_cluster_file()

    def controller_running(self) -> bool:
        """Whether a controller serves this cluster: the one its launcher started, or
        any other its connection file names (one restored by hand, say)."""
        if self.controller is not None and self.controller.running():
            return True
        return leftovers.named_controller(self.context.connection_file) is not None

    def _make_way(self) -> None:
        """Clear this cluster's folder for a new start: refuse if a cluster of this id
        runs or crashed; end and keep aside what one that stopped left (its controller
        stopped by a client, say; see :attr:`previous`)."""
        folder = self.context.cluster_dir
        if not folder.exists():
            return
        conn, record = self.context.connection_file, paths.cluster_file(self.cluster_id)
        try:  # the earlier cluster's own launcher knows its controller; else the file names it
            earlier = Cluster.from_file(self.cluster_id) if record.exists() else self
        except Exception:  # a damaged cluster file
            earlier = self
        if earlier.controller_running():
            raise ClusterError(
                f"cluster {self.cluster_id!r} is already running: stop it with "
                f"`par stop --cluster-id {self.cluster_id}` or choose another --cluster-id"
            )
        strays = leftovers.processes(conn)
        if conn.exists():  # a controller that stops removes it: this one crashed
            running = len(leftovers.engines(strays))
            raise ClusterCrashed(self.cluster_id, running, restorable=record.exists())
        leftovers.stop(strays)
        self.previous = leftovers.clear(self.cluster_id)

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
        controller = self._controller_cls(
            self.context, controller_args=[*self.controller_args, "--restore"], **options
        )
        self.controller = controller
        controller.emit("restoring")
        try:
            controller.start()
        except BaseException as exc:
            controller.stop()
            controller.emit("failed", error=str(exc))
            raise
        controller.emit("running")
        self.write_cluster_file()

    def restore_and_connect_sync(self, progress: Progress | None = None) -> Client:
        """Restore the controller (:meth:`restore_controller_sync`), connect a client, and
        wait until the engines still running have come back to it."""
        self.restore_controller_sync()
        try:
            client = self.connect_client_sync()
            self._client = client
            if self.restart_lost_engines:
                client.subscribe_events(self._on_cluster_event)
            self.wait_for_engines_sync(client, self.engines_running(), progress)
        except BaseException:
            self.stop_cluster_sync()  # as a start that fails: nothing left half up
            raise
        return client

    def engines_running(self) -> int:
        """How many engines this cluster's launchers have running."""
        self._reload_sets()
        return sum(es.running_count() for es in self.engines.values())

    def _engine_set(
        self, n: int | None = None, launcher: str | None = None, **options: Any
    ) -> EngineSetLauncher:
        """A new, not yet started set of ``n`` engines (its launcher checks its options)."""
        n = n if n is not None else (self.n or os.cpu_count() or 1)
        cls = launcher_class("engines", launcher) if launcher else self._engine_cls
        opts = _split_options(options, cls)[0] if launcher else {**self.engine_options, **options}
        return cls(self.context, n=n, **opts)

    def start_engines_sync(
        self, n: int | None = None, launcher: str | None = None, **options: Any
    ) -> str:
        """Start a new set of ``n`` engines; return its engine-set id."""
        if self.controller is None:
            raise ClusterError("start the controller before engines (start_cluster does both)")
        return self._start_engine_set(self._engine_set(n, launcher, **options))

    def _start_engine_set(self, es: EngineSetLauncher) -> str:
        """Start a set made by :meth:`_engine_set`, stopping it if its start fails."""
        self._forget_ended_sets()
        set_id = f"{int(time.time() * 1000)}-{secrets.token_hex(2)}"
        self._adopt(set_id, es)
        self.write_cluster_file()  # the set is on record before its first engine starts
        es.emit("starting", engine_set=set_id, n=es.n)
        try:
            es.start()
        except BaseException as exc:
            es.stop()
            es.emit("failed", engine_set=set_id, error=str(exc))
            del self.engines[set_id]
            self.write_cluster_file()
            raise
        es.emit("running", engine_set=set_id, n=es.n)
        self.write_cluster_file()
        return set_id

    def _forget_ended_sets(self) -> None:
        """Drop the engine sets none of whose engines runs any more (reaping them)."""
        self._reload_sets()
        for set_id, es in list(self.engines.items()):
            if not es.running():
                es.stop()
                es.emit("stopped", engine_set=set_id)
                self._ended_sets.append(self.engines.pop(set_id))

    def add_engines(self, n: int = 1, launcher: str | None = None, **options: Any) -> str:
        """Add ``n`` engines to the running cluster; return the new engine-set id."""
        return self.start_engines_sync(n, launcher, **options)

    def start_cluster_sync(self, n: int | None = None) -> None:
        """Start the controller, then ``n`` engines."""
        # Made first, as making a launcher checks its option values: a wrong one fails in one
        # line before any process starts, instead of after the controller is up.
        engines = self._engine_set(n)
        self.start_controller_sync()
        try:
            self._start_engine_set(engines)
        except BaseException:
            self.stop_cluster_sync()
            raise

    def connect_client_sync(self) -> Client:
        """A client connected to this cluster."""
        return Client(paths.connection_file(self.cluster_id), cluster=self)

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
        deadline = time.monotonic() + self.engine_timeout
        last = -1
        while True:
            count = len(client.ids)
            if progress is not None and count != last:
                progress(count, n)
                last = count
            if count >= n:
                return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"only {count} of {n} engines registered within {self.engine_timeout:.0f} s"
                    + self._engine_output(watched)
                )
            dead = [es for es in watched if not es.running()]
            if dead and len(client.ids) < n:
                raise ClusterError(
                    f"engines exited before registering ({count} of {n} up)"
                    + self._engine_output(dead)
                )
            try:
                client.wait_for_engines(count + 1, timeout=0.2)
            except TimeoutError:
                pass

    RESTART_LIMIT = 10  # replacements per minute, so a crash loop cannot run away

    def _on_cluster_event(self, kind: str, data: dict[str, Any]) -> None:
        """Replace a lost engine through the cluster's launcher (``restart_lost_engines=True``)."""
        if kind != "engine_lost" or self._stopping:
            return
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < 60] + [now]
        if len(self._restarts) > self.RESTART_LIMIT:
            log.error(
                "not restarting engine %s: %d engines lost in a minute",
                data.get("id"),
                len(self._restarts),
            )
            return
        threading.Thread(target=self._replace_engine, args=(data,), daemon=True).start()

    def _replace_engine(self, data: dict[str, Any]) -> None:
        try:
            self.add_engines(1)
            log.warning(
                "engine %s was lost (%s); started a replacement",
                data.get("id"),
                data.get("reason", "no reason given"),
            )
        except Exception:
            log.exception("could not start a replacement for engine %s", data.get("id"))

    def describe_engine_exit(self, pid: int) -> str | None:
        """What the launchers know of how the engine with this pid ended."""
        for es in [*self.engines.values(), *self._ended_sets]:
            report = es.describe_exit(pid)
            if report:
                return report
        return None

    @staticmethod
    def _engine_output(sets: Iterable[EngineSetLauncher]) -> str:
        outputs = [es.output(10) for es in sets]
        text = "\n".join(o for o in outputs if o)
        return f"; their last output:\n{text}" if text else ""

    def start_and_connect_sync(
        self, n: int | None = None, progress: Progress | None = None, activate: bool = False
    ) -> Client:
        """Start the cluster, connect a client, and wait for the engines.

        With ``activate=True`` the ``%px`` magics are registered for all engines (in IPython).
        """
        n = n if n is not None else (self.n or os.cpu_count() or 1)
        self.start_cluster_sync(n)
        try:
            client = self.connect_client_sync()
            self._client = client
            if self.restart_lost_engines:
                client.subscribe_events(self._on_cluster_event)
            # a launcher may start another count than asked (ssh: the hosts' engine counts)
            expected = sum(es.n for es in self.engines.values())
            self.wait_for_engines_sync(client, expected, progress)
            if activate:
                client.activate()
        except BaseException:
            self.stop_cluster_sync()
            raise
        return client

    # ---- stopping and signalling ----------------------------------------------------------------

    def _sets(self, engine_set_id: str | None) -> list[str]:
        self._reload_sets()
        if engine_set_id is None:
            return list(self.engines)
        if engine_set_id not in self.engines:
            raise ClusterError(f"no engine set {engine_set_id!r} (sets: {', '.join(self.engines)})")
        return [engine_set_id]

    def stop_engines_sync(self, engine_set_id: str | None = None) -> None:
        """Stop one engine set (all by default)."""
        for set_id in self._sets(engine_set_id):
            es = self.engines.pop(set_id)
            es.stop()
            es.emit("stopped", engine_set=set_id)
        if self.controller is not None and paths.cluster_dir(self.cluster_id).exists():
            self.write_cluster_file()

    def restart_engines_sync(self, engine_set_id: str | None = None) -> None:
        """Stop and start again one engine set (all by default)."""
        for set_id in self._sets(engine_set_id):
            es = self.engines[set_id]
            es.stop()
            es.start()
        self.write_cluster_file()

    def signal_engines_sync(self, sig: int | str, engine_set_id: str | None = None) -> None:
        """Send a signal to the engines of one set (all by default)."""
        signum = getattr(signal, sig) if isinstance(sig, str) else int(sig)
        for set_id in self._sets(engine_set_id):
            self.engines[set_id].signal(signum)

    # ---- one engine at a time (through the controller, so any launcher's engines) -------

    def _engine_client(self) -> Client:
        if self._client is None:
            self._client = self.connect_client_sync()
        return self._client

    def stop_engine_sync(self, engine_id: int, timeout: float = 30.0) -> None:
        """Stop one engine and wait until it has left.

        The engine escalates to SIGKILL by itself if its task ignores signals; one
        whose task holds the interpreter so that it cannot (a long C call) is killed
        here if it runs on this machine.
        """
        client = self._engine_client()
        engine = client.engines().get(engine_id, {})
        client.shutdown(targets=[engine_id], block=True)
        deadline = time.monotonic() + timeout
        while engine_id in client.ids and time.monotonic() < deadline:
            time.sleep(0.05)
        if engine_id in client.ids:
            raise ClusterError(f"engine {engine_id} did not stop within {timeout:.0f} s")
        pid = engine.get("pid")
        if engine.get("host") == socket.gethostname() and isinstance(pid, int):
            sign = str(paths.connection_file(self.cluster_id))  # in each local engine's command
            if process.end_lingering(pid, sign, ENGINE_EXIT_GRACE):
                log.warning(
                    "engine %d left the cluster but its process %d went on for %.0f s: "
                    "killed it with SIGKILL",
                    engine_id,
                    pid,
                    ENGINE_EXIT_GRACE,
                )

    def restart_engine_sync(self, engine_id: int) -> str:
        """Stop one engine and start a replacement (it gets a new id); return its engine set."""
        self.stop_engine_sync(engine_id)
        return self.add_engines(1)

    def signal_engine_sync(self, sig: int | str, engine_id: int) -> None:
        """Send a signal (number or name) to one engine."""
        self._engine_client().send_signal(sig, targets=[engine_id])

    def stop_controller_sync(self) -> None:
        """Stop the controller."""
        if self.controller is not None:
            self.controller.stop()
            self.controller.emit("stopped")

    def disconnect_client(self) -> None:
        """Close the client this cluster connected, if any (the cluster keeps running)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def stop_cluster_sync(self) -> Stopped:
        """Stop every engine set, the controller and any other process that still serves
        the cluster, and remove the cluster's files but its task database (kept aside,
        with the logs if the controller had died); say what was found and kept."""
        self._stopping = True
        self.disconnect_client()
        crashed = self.context.connection_file.exists() and not self.controller_running()
        stopped = Stopped()
        try:
            self._reload_sets()
            for set_id, es in list(self.engines.items()):
                try:
                    es.stop()
                    es.emit("stopped", engine_set=set_id)
                except Exception as exc:  # one failing launcher must not strand the others
                    log.error("stopping engine set %s failed: %s", set_id, exc)
            self.engines.clear()
            self.stop_controller_sync()
            strays = leftovers.processes(self.context.connection_file)
            leftovers.stop(strays)
            stopped.strays = len(strays)
        finally:
            stopped.kept = leftovers.clear(self.cluster_id, crashed)
        return stopped

    # ---- async forms, as in ipyparallel ----------------------------------------------------

    async def start_controller(self) -> None:
        """Async form of :meth:`start_controller_sync`."""
        await asyncio.to_thread(self.start_controller_sync)

    async def start_engines(self, n: int | None = None, launcher: str | None = None) -> str:
        """Async form of :meth:`start_engines_sync`."""
        return await asyncio.to_thread(self.start_engines_sync, n, launcher)

    async def start_cluster(self, n: int | None = None) -> None:
        """Async form of :meth:`start_cluster_sync`."""
        await asyncio.to_thread(self.start_cluster_sync, n)

    async def connect_client(self) -> Client:
        """Async form of :meth:`connect_client_sync`."""
        return await asyncio.to_thread(self.connect_client_sync)

    async def start_and_connect(self, n: int | None = None, activate: bool = False) -> Client:
        """Async form of :meth:`start_and_connect_sync`."""
        return await asyncio.to_thread(self.start_and_connect_sync, n, None, activate)

    async def restore_controller(self) -> None:
        """Async form of :meth:`restore_controller_sync`."""
        await asyncio.to_thread(self.restore_controller_sync)

    async def restore_and_connect(self) -> Client:
        """Async form of :meth:`restore_and_connect_sync`."""
        return await asyncio.to_thread(self.restore_and_connect_sync)

    async def stop_engines(self, engine_set_id: str | None = None) -> None:
        """Async form of :meth:`stop_engines_sync`."""
        await asyncio.to_thread(self.stop_engines_sync, engine_set_id)

    async def restart_engines(self, engine_set_id: str | None = None) -> None:
        """Async form of :meth:`restart_engines_sync`."""
        await asyncio.to_thread(self.restart_engines_sync, engine_set_id)

    async def signal_engines(self, sig: int | str, engine_set_id: str | None = None) -> None:
        """Async form of :meth:`signal_engines_sync`."""
        await asyncio.to_thread(self.signal_engines_sync, sig, engine_set_id)

    async def stop_engine(self, engine_id: int) -> None:
        """Async form of :meth:`stop_engine_sync`."""
        await asyncio.to_thread(self.stop_engine_sync, engine_id)

    async def restart_engine(self, engine_id: int) -> str:
        """Async form of :meth:`restart_engine_sync`."""
        return await asyncio.to_thread(self.restart_engine_sync, engine_id)

    async def signal_engine(self, sig: int | str, engine_id: int) -> None:
        """Async form of :meth:`signal_engine_sync`."""
        await asyncio.to_thread(self.signal_engine_sync, sig, engine_id)

    async def stop_controller(self) -> None:
        """Async form of :meth:`stop_controller_sync`."""
        await asyncio.to_thread(self.stop_controller_sync)

    async def stop_cluster(self) -> Stopped:
        """Async form of :meth:`stop_cluster_sync`."""
        return await asyncio.to_thread(self.stop_cluster_sync)

    # ---- context manager -----------------------------------------------------------------

    def __enter__(self) -> Client:
        return self.start_and_connect_sync()

    def __exit__(self, *exc: Any) -> None:
        self.stop_cluster_sync()

    async def __aenter__(self) -> Client:
        return await self.start_and_connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop_cluster()

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
    except ClusterError:  # no cluster file: a controller run by hand, or nothing at all
        if not paths.connection_file(cluster_id).exists():
            raise
        cluster = Cluster(cluster_id=cluster_id)
    except (OSError, ValueError, KeyError, TypeError, PluginError) as exc:
        unreadable = f"{paths.cluster_file(cluster_id)} is unreadable ({exc})"
        cluster = Cluster(cluster_id=cluster_id)
    stopped = cluster.stop_cluster_sync()
    stopped.unreadable = unreadable
    return stopped
