"""Mongo-style queries over task records (``Client.db_query``).

Supported operators, as in ipyparallel: ``$in $nin $eq $ne $gt $gte $lt $lte $glob``
(a shell-style pattern); a plain value means equality.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda v, x: v == x,
    "$ne": lambda v, x: v != x,
    "$in": lambda v, x: v in x,
    "$nin": lambda v, x: v not in x,
    "$gt": lambda v, x: v is not None and v > x,
    "$gte": lambda v, x: v is not None and v >= x,
    "$lt": lambda v, x: v is not None and v < x,
    "$lte": lambda v, x: v is not None and v <= x,
    "$glob": lambda v, x: isinstance(v, str) and fnmatch.fnmatchcase(v, x),
}


def check(query: dict[str, Any]) -> None:
    """Raise ValueError naming an unknown operator."""
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


def select(
    records: Iterable[dict[str, Any]], query: dict[str, Any], keys: list[str] | None
) -> list[dict[str, Any]]:
    """The matching records, reduced to ``keys`` (plus msg_id) if given."""
    check(query)
    out = [r for r in records if matches(r, query)]
    if keys:
        wanted = {"msg_id", *keys}
        out = [{k: v for k, v in r.items() if k in wanted} for r in out]
    return out
