"""How long a result's messages took, from their metadata's times.

The times are those ipyparallel keeps per message (UTC datetimes):
``submitted`` (here), ``started`` and ``completed`` (on the engine) and
``received`` (here again). ``AsyncResult.elapsed``, ``wall_time``,
``serial_time`` and ``timedelta`` are these functions over its messages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .replies import Metadata


def elapsed(mds: list[Metadata], done: bool) -> float:
    """Seconds since the first submission: until now, or (``done``) the last reply."""
    first = min(md["submitted"] for md in mds)
    received = [md["received"] for md in mds if md["received"] is not None] if done else []
    last = max(received) if received else datetime.now(UTC)
    return (last - first).total_seconds()


def wall_time(mds: list[Metadata]) -> float:
    """Seconds from the first submission to the last reply received."""
    first = min(md["submitted"] for md in mds)
    last = max(md["received"] for md in mds)
    return float((last - first).total_seconds())


def serial_time(mds: list[Metadata]) -> float:
    """The sum of the engines' compute times."""
    return sum(
        (md["completed"] - md["started"]).total_seconds()
        for md in mds
        if md["started"] is not None and md["completed"] is not None
    )


def seconds_between(
    start: Any, end: Any, start_key: Callable[[Any], datetime], end_key: Callable[[Any], datetime]
) -> float:
    """Seconds from ``start`` to ``end``, times or lists of them (reduced by the keys)."""
    return (_one_time(end, end_key) - _one_time(start, start_key)).total_seconds()


def _one_time(times: Any, key: Callable[[Any], datetime]) -> datetime:
    """One time from a time or a list of them, refusing times not set yet."""
    many = times if isinstance(times, list | tuple) else [times]
    if not many or any(t is None for t in many):
        raise ValueError("timedelta needs times that are set (is the result ready?)")
    return many[0] if len(many) == 1 else key(many)
