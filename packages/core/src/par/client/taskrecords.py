"""Task records as ``Client.db_query`` returns them, from the controller's answer.

Times become datetimes (UTC), as in ipyparallel, and ``buffers`` /
``result_buffers`` lists of bytes; datetimes in a query become the
timestamps the controller compares.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import protocol
from ..protocol import buffer_of
from .replies import utc

TIME_KEYS = ("submitted", "started", "completed")
FRAME_KEYS = ("buffers", "result_buffers")


def plain_query(query: dict[str, Any]) -> dict[str, Any]:
    """The query with every datetime (also inside operators and lists) as a timestamp."""
    return {
        key: {op: _plain(v) for op, v in cond.items()} if isinstance(cond, dict) else _plain(cond)
        for key, cond in query.items()
    }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def records_of(payload: list[Any]) -> list[dict[str, Any]]:
    """The records in a db_query answer: msgpack rows, then the frames their counts announce."""
    rows: list[dict[str, Any]] = protocol.decode(payload[0])
    pos = 1
    for row in rows:
        for key in FRAME_KEYS:
            if key in row:
                n = int(row[key])
                row[key] = [bytes(buffer_of(f)) for f in payload[pos : pos + n]]
                pos += n
        for key in TIME_KEYS:
            if key in row:
                row[key] = utc(row[key])
    return rows
