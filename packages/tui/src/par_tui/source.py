"""The monitor's data source: a client of the controller, plus the cluster's launchers.

The source subscribes to the controller's event stream (engine events, and
for monitors the ``activity`` feed: per-second sums of finished tasks per
engine, errors and output, a few times a second however many tasks finish)
and polls its status once per refresh interval (only the engines that
changed since the last poll: the rest the state keeps). It also follows the
launchers' lifecycle events in the cluster's ``events.jsonl``, which
launchers write whether or not a controller is up. Everything it learns
goes to one ``emit(kind, data)`` callback as plain dicts, ``connected``
first for each controller; a face hands them to
:meth:`par_tui.state.ClusterState.apply`. When the controller goes away the
source says so and keeps trying, about once per interval, to connect to
whatever controller the cluster's connection file names next.

Actions (add, stop, restart, interrupt engines; abort queued tasks; stop the
cluster) go through the same client, or through the cluster's launchers as
recorded in its cluster file, exactly as ``par engines`` and ``par stop`` do.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import par
from par import paths
from par.errors import ParError
from par.launcher import EVENTS_FILE

Emit = Callable[[str, dict[str, Any]], None]

CONNECT_TIMEOUT = 3.0
LAUNCHERS_RELOAD = 5.0  # seconds between cluster-file reads when an engine's launcher is unknown


class LauncherEventLog:
    """Follows a cluster's ``events.jsonl``: each read returns the events added since the last.

    The file goes away when the cluster stops and comes back when a cluster with the same id
    starts; the new file is read from its start.
    """

    def __init__(self, cluster_dir: Path) -> None:
        self.path = cluster_dir / EVENTS_FILE
        self._offset = 0
        self._file: tuple[int, int] | None = None  # (device, inode) of the file read so far
        # The file's first line: a file created anew can get the old one's inode (and grow
        # past the old offset between two reads), but not its first event, which has a time.
        self._head = b""

    def read_new(self) -> list[dict[str, Any]]:
        """The events written since the previous call, oldest first."""
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                same = (
                    (st.st_dev, st.st_ino) == self._file
                    and st.st_size >= self._offset
                    and f.read(len(self._head)) == self._head
                )
                if not same:
                    self._offset, self._head = 0, b""
                self._file = (st.st_dev, st.st_ino)
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            self._offset, self._head, self._file = 0, b"", None
            return []
        # A line still being written is read, whole, next time.
        data = data[: data.rfind(b"\n") + 1]
        if not self._head:
            self._head = data[: data.find(b"\n") + 1]
        self._offset += len(data)
        events = []
        for line in data.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a blank or damaged line must not stop the monitor
            if isinstance(record, dict):
                events.append(record)
        return events


class MonitorSource:
    """Connects to one cluster's controller and reports what it says."""

    def __init__(self, cluster_id: str = paths.DEFAULT_CLUSTER_ID, interval: float = 1.0) -> None:
        self.cluster_id = cluster_id
        self.interval = interval
        self._emit: Emit | None = None
        self._client: par.Client | None = None
        self._announced = False
        self._gone: str | None = None  # why the controller went away, set from the I/O thread
        self._seq = 0  # the last activity event's number
        self._behind = False  # an activity event was missed: ask for what was kept again
        self._was_connected = False
        self._by_pid: dict[int, str] = {}
        self._single_launcher: str | None = None
        self._launchers_text = ""
        self._launchers_read = 0.0

    # ---- connection ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a client is connected to the controller."""
        return self._client is not None and self._gone is None

    def connect(self) -> None:
        """Connect to the controller (ClusterError if no such cluster, TimeoutError if silent)."""
        client = par.Client(cluster_id=self.cluster_id, timeout=CONNECT_TIMEOUT)
        self._gone = None
        self._client = client
        self._announced = False
        self._read_launchers()

    def run(self, emit: Emit, stop: threading.Event) -> None:
        """Report to ``emit`` until ``stop`` is set: events as they come, status each interval."""
        self._emit = emit
        launcher_events = LauncherEventLog(paths.cluster_dir(self.cluster_id))
        try:
            while not stop.is_set():
                self._step()
                new = launcher_events.read_new()
                if new:
                    self._send("launcher_events", {"events": new})
                stop.wait(self.interval)
        finally:
            self._emit = None
            self.close()

    def _step(self) -> None:
        if self._client is not None and self._gone is not None:
            self._drop(self._gone)
        if self._client is None:
            try:
                self.connect()
            except (ParError, TimeoutError, OSError, ValueError):
                return  # not back yet: try again next interval
        client = self._client
        assert client is not None
        try:
            if not self._announced:
                self._announced = True
                self._was_connected = True
                self._send(
                    "connected",
                    {
                        "controller_url": client.connection_info.client_url,
                        "launchers": self._launchers_text,
                    },
                )
                # After "connected": what the controller sends on subscribing (its recent
                # activity and errors) belongs to this connection.
                client.subscribe_events(self._on_client_event, tasks=True)
            if self._behind:
                client.subscribe_events(self._on_client_event, tasks=True)
            status = client.status(changed=True)
        except (ParError, TimeoutError) as exc:
            self._drop(f"the controller did not answer ({exc})")
            return
        # The events sent before this reply have been heard by now: if the last of them is
        # not the last heard, some were missed and nothing came after to show the gap.
        if int(status.get("feed_seq", 0)) > self._seq:
            self._behind = True
        for engine in status.get("engines", []):
            self._annotate(engine)
        status["launchers"] = self._launchers_text  # engine sets come and go (`par engines`)
        self._send("status", status)

    def _drop(self, reason: str) -> None:
        """Forget the client of a controller that went away."""
        client, self._client = self._client, None
        self._gone = None
        if client is not None:
            client.close(linger=0)
        if self._was_connected:
            self._was_connected = False
            self._send("disconnected", {"reason": reason})

    def close(self) -> None:
        """Disconnect (the cluster keeps running)."""
        client, self._client = self._client, None
        if client is not None:
            client.close(linger=0)

    def _on_client_event(self, kind: str, data: dict[str, Any]) -> None:
        """Called on the client's I/O thread: annotate and pass on."""
        if kind == "controller_stopped":
            self._gone = "the controller stopped"
            return
        if kind == "activity":
            seq = int(data.get("seq", 0))
            if data.get("backlog"):
                self._behind = False
            elif self._behind or seq != self._seq + 1:
                self._behind = True  # the sums would come up short: wait for a new backlog
                return
            self._seq = seq
        if kind.startswith("engine_"):
            data = self._annotate(dict(data))
        self._send(kind, data)

    def _send(self, kind: str, data: dict[str, Any]) -> None:
        emit = self._emit
        if emit is not None:
            emit(kind, data)

    # ---- launchers -------------------------------------------------------------------------

    def _read_launchers(self) -> None:
        """Learn from the cluster file which launcher started which engine process."""
        self._launchers_read = time.monotonic()
        try:
            cluster = par.Cluster.from_file(self.cluster_id)
        except Exception:
            return  # a client of a connection file outside PAR_HOME, say
        by_pid: dict[int, str] = {}
        names: list[str] = []
        for es in cluster.engines.values():
            names.append(es.PLUGIN_NAME)
            for proc in es.to_dict().get("processes") or []:
                if isinstance(proc, dict) and "pid" in proc:
                    by_pid[int(proc["pid"])] = es.PLUGIN_NAME
        self._by_pid = by_pid
        kinds = sorted(set(names))
        self._single_launcher = kinds[0] if len(kinds) == 1 else None
        # no launcher started a controller run by hand (`par controller`)
        ctl = cluster.controller.PLUGIN_NAME if cluster.controller is not None else "by hand"
        sets = ", ".join(f"{k} ({names.count(k)} set{'s' * (names.count(k) > 1)})" for k in kinds)
        self._launchers_text = f"controller {ctl}, engines {sets or 'none'}"

    def _annotate(self, engine: dict[str, Any]) -> dict[str, Any]:
        """Add the name of the launcher that started an engine, when the cluster file says."""
        name = (engine.get("info") or {}).get("launcher") or self._by_pid.get(
            int(engine.get("pid", 0))
        )
        if name is None and time.monotonic() - self._launchers_read > LAUNCHERS_RELOAD:
            self._read_launchers()
            name = self._by_pid.get(int(engine.get("pid", 0)))
        engine["launcher"] = name or self._single_launcher or "?"
        return engine

    # ---- actions (called from worker threads) ------------------------------------------------

    def _require(self) -> par.Client:
        client = self._client
        if client is None or self._gone is not None:
            raise par.ClusterError("not connected to the controller")
        return client

    def add_engines(self, n: int = 1) -> str:
        """Start ``n`` more engines through the cluster's launcher."""
        cluster = par.Cluster.from_file(self.cluster_id)
        set_id = cluster.add_engines(n)
        self._read_launchers()
        return set_id

    def stop_engine(self, engine_id: int) -> None:
        """Ask one engine to stop."""
        self._require().shutdown(targets=[engine_id])

    def restart_engine(self, engine_id: int) -> None:
        """Stop one engine and start a new one in its place (the core has no in-place restart)."""
        self.stop_engine(engine_id)
        self.add_engines(1)

    def interrupt_engine(self, engine_id: int) -> None:
        """Send SIGINT to one engine: its running task raises KeyboardInterrupt."""
        self._require().send_signal("SIGINT", targets=[engine_id])

    def unstarted(self) -> dict[str, list[str]]:
        """The ids of every client's tasks that have not started, by client (the first four
        hex digits of its tasks' ids, as the monitor shows them)."""
        client = self._require()
        running = {(e.get("stats") or {}).get("task") for e in client.status()["engines"]}
        queues = client.queue_status(verbose=True)
        ids = [*queues.pop("unassigned"), *(mid for q in queues.values() for mid in q["queue"])]
        by_client: dict[str, list[str]] = {}
        for mid in ids:
            if mid not in running:
                by_client.setdefault(mid[:4], []).append(mid)
        return by_client

    def abort(self, ids: list[str]) -> None:
        """Abort these tasks (of any client) if they have not started."""
        self._require().abort(ids)

    def stop_cluster(self) -> None:
        """Stop the engines and the controller, as ``par stop`` does."""
        par.Cluster.from_file(self.cluster_id).stop_cluster_sync()
