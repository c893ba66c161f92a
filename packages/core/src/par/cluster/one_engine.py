"""Stopping one engine through the controller, whichever launcher started it.

A launcher knows its set, not which of its processes is engine 3; the controller knows
every engine by id. So one engine is stopped by the controller's shutdown request, and
the call waits until the engine has left the controller's list. An engine escalates to
SIGKILL by itself when its task ignores signals, but one whose task holds the
interpreter (a long C call) cannot: if it runs on this machine, and its process still
has this cluster's connection file in its command line (so the pid was not reused),
it is killed here after ``ENGINE_EXIT_GRACE`` seconds.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

from .. import process
from ..client.client import Client
from ..errors import ClusterError

log = logging.getLogger("par.cluster")

ENGINE_EXIT_GRACE = 10.0  # seconds a stopped engine's process gets to exit before SIGKILL


def stop_engine(client: Client, engine_id: int, timeout: float, connection_file: Path) -> None:
    """Stop engine ``engine_id`` of the client's cluster and wait until it has left."""
    engine = client.engines().get(engine_id, {})
    client.shutdown(targets=[engine_id], block=True)
    deadline = time.monotonic() + timeout
    while engine_id in client.ids and time.monotonic() < deadline:
        time.sleep(0.05)
    if engine_id in client.ids:
        raise ClusterError(f"engine {engine_id} did not stop within {timeout:.0f} s")
    pid = engine.get("pid")
    if not (engine.get("host") == socket.gethostname() and isinstance(pid, int)):
        return  # only a process of this machine can be killed from here
    # the connection file is in each local engine's command line: a reused pid is spared
    if process.end_lingering(pid, str(connection_file), ENGINE_EXIT_GRACE):
        log.warning(
            "engine %d left the cluster but its process %d went on for %.0f s: "
            "killed it with SIGKILL",
            engine_id,
            pid,
            ENGINE_EXIT_GRACE,
        )
