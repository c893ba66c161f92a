"""EngineSets: a cluster's sets of engines by id, each one launcher's, kept on record.

A cluster has one controller and any number of engine *sets*: ``par start`` makes the
first, each ``par engines`` (or :meth:`par.Cluster.add_engines`) one more, possibly from
another launcher. The cluster file holds every set's launcher state, so that a process
other than the one that started a set can stop it:

- a set is on record before its first engine starts, and struck off again if its start
  fails (after its launcher has stopped what it did start);
- a launcher whose start takes a while saves the record itself as processes start (its
  ``save_state``), so a ``par stop`` meanwhile finds them;
- :meth:`EngineSets.reload` picks up the sets other processes added before anything that
  must see them all (a stop, a count).

A set none of whose engines runs any more is forgotten at the next start, but the last
``ENDED_SETS_KEPT`` are kept a while to answer how one of their engines ended: a client
asks just after a restart forgot the set of the engine it replaced.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import connection, paths
from ..errors import ClusterError
from ..launcher import EngineSetLauncher, LaunchContext
from ..openfiles import room_hint
from ..plugins import launcher_class

log = logging.getLogger("par.cluster")

ENDED_SETS_KEPT = 16  # sets forgotten once their engines ended, still asked how they ended


class EngineSets:
    """The engine-set launchers of one cluster, by set id (:attr:`launchers`).

    ``save`` writes the cluster file; it is called whenever the sets on record change.
    """

    def __init__(self, context: LaunchContext, save: Callable[[], None]) -> None:
        self.context = context
        self.save = save
        self.launchers: dict[str, EngineSetLauncher] = {}
        self.ended: deque[EngineSetLauncher] = deque(maxlen=ENDED_SETS_KEPT)

    # ---- the record ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The sets' part of the cluster file."""
        return {
            set_id: {"launcher": es.PLUGIN_NAME, "state": es.to_dict()}
            for set_id, es in self.launchers.items()
        }

    def merge(self, entries: dict[str, Any]) -> None:
        """Rebuild the recorded sets (a cluster file's ``engines``) not known here yet."""
        for set_id, entry in entries.items():
            if set_id not in self.launchers:
                es_cls = launcher_class("engines", entry["launcher"])
                self.adopt(set_id, es_cls.from_dict(self.context, entry["state"]))

    def adopt(self, set_id: str, es: EngineSetLauncher) -> None:
        """Make a set one of this cluster's, its launcher saving its state in the record."""
        self.launchers[set_id] = es
        es.save_state = self.save

    def reload(self) -> None:
        """Pick up the sets other processes added (so a stop leaves none behind)."""
        path = paths.cluster_file(self.context.cluster_id)
        if path.exists():
            try:
                self.merge(paths.read_json(path).get("engines") or {})
            except (OSError, ValueError):
                pass

    def select(self, engine_set_id: str | None) -> list[str]:
        """The ids of the sets one call acts on: the one named, or every one."""
        self.reload()
        if engine_set_id is None:
            return list(self.launchers)
        if engine_set_id not in self.launchers:
            known = ", ".join(self.launchers)
            raise ClusterError(f"no engine set {engine_set_id!r} (sets: {known})")
        return [engine_set_id]

    # ---- starting --------------------------------------------------------------------------

    def start(self, es: EngineSetLauncher) -> str:
        """Start a new set, on record first; stop and strike it off if its start fails.
        Return its set id."""
        es.check_fits()
        self._check_room(es)
        self.forget_ended()
        set_id = f"{int(time.time() * 1000)}-{secrets.token_hex(2)}"
        self.adopt(set_id, es)
        self.save()  # the set is on record before its first engine starts
        es.emit("starting", engine_set=set_id, n=es.n)
        try:
            es.start()
        except BaseException as exc:
            es.stop()
            es.emit("failed", engine_set=set_id, error=str(exc))
            del self.launchers[set_id]
            self.save()
            raise
        es.emit("running", engine_set=set_id, n=es.n)
        self.save()
        return set_id

    def forget_ended(self) -> None:
        """Drop the sets none of whose engines runs any more (reaping them)."""
        self.reload()
        for set_id, es in list(self.launchers.items()):
            if not es.running():
                es.stop()
                es.emit("stopped", engine_set=set_id)
                self.ended.append(self.launchers.pop(set_id))

    # ---- acting on sets ------------------------------------------------------------------

    def stop(self, engine_set_id: str | None = None) -> None:
        """Stop one set (all by default) and forget it."""
        for set_id in self.select(engine_set_id):
            es = self.launchers.pop(set_id)
            es.stop()
            es.emit("stopped", engine_set=set_id)

    def stop_all(self) -> None:
        """Stop every set, the recorded ones too; one failing launcher strands no other."""
        self.reload()
        for set_id, es in list(self.launchers.items()):
            try:
                es.stop()
                es.emit("stopped", engine_set=set_id)
            except Exception as exc:
                log.error("stopping engine set %s failed: %s", set_id, exc)
        self.launchers.clear()

    def restart(self, engine_set_id: str | None = None) -> None:
        """Stop and start again one set (all by default)."""
        for set_id in self.select(engine_set_id):
            es = self.launchers[set_id]
            es.stop()
            es.start()

    def signal(self, signum: int, engine_set_id: str | None = None) -> None:
        """Send a signal to the engines of one set (all by default)."""
        for set_id in self.select(engine_set_id):
            self.launchers[set_id].signal(signum)

    # ---- asking ----------------------------------------------------------------------------

    def _check_room(self, es: EngineSetLauncher) -> None:
        """Refuse a set that the controller's limit on open files cannot hold beside the
        engines running, before any of it starts: past that limit engines cannot connect,
        nor can clients (see :mod:`par.openfiles`)."""
        try:
            room = connection.load(paths.connection_file(self.context.cluster_id)).engine_room
        except ClusterError:  # a controller started by hand, elsewhere: nothing to go by
            return
        want = es.n + self.running_count()
        why = room_hint(want, room)
        if why:
            raise ClusterError(f"{want} engines are more than the controller can take{why}")

    def running_count(self) -> int:
        """How many engines the sets have running, the recorded ones too."""
        self.reload()
        return sum(es.running_count() for es in self.launchers.values())

    def describe_exit(self, pid: int) -> str | None:
        """What the launchers, the ended sets' too, know of how the engine of ``pid`` ended."""
        for es in [*self.launchers.values(), *self.ended]:
            report = es.describe_exit(pid)
            if report:
                return report
        return None
