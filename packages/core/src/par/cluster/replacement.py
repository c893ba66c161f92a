"""EngineReplacer: start a new engine whenever the controller reports one lost.

This is ``Cluster(restart_lost_engines=True)`` and ``par start --restart-engines``. The
controller's ``engine_lost`` event arrives on the client's I/O thread, which must never
block (it resolves every result): the replacement starts on a thread of its own. At most
``RESTART_LIMIT`` replacements a minute, so engines that crash as they start cannot
loop forever; past it a lost engine is logged and left alone. A cluster that is
stopping replaces nothing (:meth:`EngineReplacer.stop`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("par.cluster")

RESTART_LIMIT = 10  # replacements per minute, so a crash loop cannot run away


class EngineReplacer:
    """Calls ``add_engine`` once for each engine the controller reports lost."""

    def __init__(self, add_engine: Callable[[], object]) -> None:
        self.add_engine = add_engine
        self.restarts: list[float] = []  # monotonic times of the last minute's replacements
        self.stopped = False

    def stop(self) -> None:
        """Replace no more engines: the cluster is stopping."""
        self.stopped = True

    def on_event(self, kind: str, data: dict[str, Any]) -> None:
        """A client's event callback: replace the engine of an ``engine_lost`` event."""
        if kind != "engine_lost" or self.stopped:
            return
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        if len(self.restarts) > RESTART_LIMIT:
            log.error(
                "not restarting engine %s: %d engines lost in a minute",
                data.get("id"),
                len(self.restarts),
            )
            return
        threading.Thread(target=self.replace, args=(data,), daemon=True).start()

    def replace(self, data: dict[str, Any]) -> None:
        """Start the replacement of the engine ``data`` describes; log how it went."""
        try:
            self.add_engine()
            log.warning(
                "engine %s was lost (%s); started a replacement",
                data.get("id"),
                data.get("reason", "no reason given"),
            )
        except Exception:
            log.exception("could not start a replacement for engine %s", data.get("id"))
