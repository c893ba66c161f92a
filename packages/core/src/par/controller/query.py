"""Mongo-style queries over task records (``Client.db_query``).

Supported operators, as in ipyparallel: ``$in $nin $eq $ne $gt $gte $lt $lte $glob``
(a shell-style pattern); a plain value means equality. Record keys are those of
ipyparallel's TaskRecord plus par's own (:data:`par.controller.records.KEYS`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from ..protocol import encode
from .records import BLOB_KEYS, DEFAULT_KEYS, FRAME_KEYS, KEYS, Record


def _member(v: Any, x: Any) -> bool:
    try:
        return v in x
    except TypeError:  # an unhashable value is in no set of hashable items
        return False


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda v, x: v == x,
    "$ne": lambda v, x: v != x,
    "$in": _member,
    "$nin": lambda v, x: not _member(v, x),
    "$gt": lambda v, x: v is not None and v > x,
    "$gte": lambda v, x: v is not None and v >= x,
    "$lt": lambda v, x: v is not None and v < x,
    "$lte": lambda v, x: v is not None and v <= x,
    "$glob": lambda v, x: isinstance(v, str) and fnmatch.fnmatchcase(v, x),
}


def check(query: dict[str, Any], keys: Iterable[str] = ()) -> None:
    """Raise ValueError naming an unknown operator or record key."""
    if not isinstance(query, dict):
        raise ValueError(f"a query is a dict of record keys to conditions, not {query!r}")
    for key in (*query, *keys):
        if key not in KEYS:
            raise ValueError(f"unknown record key {key!r}; the keys are {', '.join(KEYS)}")
    for cond in query.values():
        if isinstance(cond, dict):
            for op in cond:
                if op not in _OPS:
                    raise ValueError(f"unknown query operator {op!r}; use one of {', '.join(_OPS)}")


def matches(record: dict[str, Any], query: dict[str, Any]) -> bool:
    """True if a record satisfies every condition of the query."""
    for key, cond in query.items():
        value = record.get(key)
        if isinstance(cond, dict):
            if not all(_OPS[op](value, arg) for op, arg in cond.items()):
                return False
        elif value != cond:
            return False
    return True


def _prepared(query: dict[str, Any]) -> dict[str, Any]:
    """The query with each ``$in``/``$nin`` list as a set, when its items allow: a lookup
    per record rather than a scan (``{"msg_id": {"$in": ids}}`` names thousands)."""
    out = {}
    for key, cond in query.items():
        if isinstance(cond, dict):
            cond = dict(cond)
            for op in ("$in", "$nin"):
                if isinstance(cond.get(op), list | tuple):
                    try:
                        cond[op] = frozenset(cond[op])
                    except TypeError:  # unhashable items: compare one by one
                        pass
        out[key] = cond
    return out


def needs_full(query: dict[str, Any], keys: Iterable[str] | None) -> bool:
    """Whether answering needs records' requests and replies, not only their scalars."""
    return bool(BLOB_KEYS.intersection((*query, *(keys or DEFAULT_KEYS))))


def answer(records: Iterable[Record], query: dict[str, Any], keys: list[str] | None) -> list[Any]:
    """The frames answering a query (that :func:`check` passed): the matching records
    (``keys``, default all but the frame keys, plus msg_id) as msgpack, then each one's
    ``buffers`` and ``result_buffers`` frames, whose counts stand in those keys."""
    wanted = list(keys) if keys else list(DEFAULT_KEYS)
    values = [k for k in dict.fromkeys(["msg_id", *wanted]) if k not in FRAME_KEYS]
    framed = [k for k in wanted if k in FRAME_KEYS]
    rows: list[dict[str, Any]] = []
    frames: list[Any] = []
    query = _prepared(query)
    for rec in records:
        if not matches(rec.fields(query), query):
            continue
        row = rec.fields(values)
        for key in framed:
            own = rec.value(key)
            row[key] = len(own)
            frames.extend(own)
        rows.append(row)
    return [encode(rows), *frames]
