"""Waiting for engines to register with the controller, failing early when they cannot.

A start waits until the controller has as many engines as the launchers started (a
launcher may start another count than asked: ssh takes each host's count). The wait
watches the client's engine ids and reports each change to ``progress`` (``par start``
draws ``engines registered: 3/4`` with it). It does not sit out the whole timeout when
the engines are gone: as soon as a set being waited for has no process left, it fails
with the last lines that set printed, which usually say why (an import error, a wrong
address).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ..client.client import Client
from ..errors import ClusterError
from ..launcher import EngineSetLauncher
from ..openfiles import room_hint

Progress = Callable[[int, int], None]
OUTPUT_LINES = 10  # of each set's output, in the error of a failed wait


def wait_for_engines(
    client: Client,
    n: int,
    timeout: float,
    watched: Iterable[EngineSetLauncher],
    progress: Progress | None = None,
) -> None:
    """Wait until ``n`` engines are registered; raise ClusterError, with their output, if
    a set of ``watched`` dies first or ``timeout`` seconds pass."""
    watched = list(watched)
    deadline = time.monotonic() + timeout
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
                f"only {count} of {n} engines registered within {timeout:.0f} s"
                + room_hint(n, client.connection_info.engine_room)
                + engine_output(watched)
            )
        dead = [es for es in watched if not es.running()]
        if dead and len(client.ids) < n:
            raise ClusterError(
                f"engines exited before registering ({count} of {n} up)" + engine_output(dead)
            )
        try:
            client.wait_for_engines(count + 1, timeout=0.2)
        except TimeoutError:
            pass


def engine_output(sets: Iterable[EngineSetLauncher]) -> str:
    """The sets' last output, as the tail of an error message ('' if they printed nothing)."""
    outputs = [es.output(OUTPUT_LINES) for es in sets]
    text = "\n".join(o for o in outputs if o)
    return f"; their last output:\n{text}" if text else ""
