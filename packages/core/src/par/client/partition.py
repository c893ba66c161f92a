"""Splitting sequences across engines (scatter, map, parallel functions) and joining them back
(gather)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def block_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous [lo, hi) ranges splitting n items into ``parts`` near-equal blocks."""
    base, extra = divmod(n, parts)
    bounds = []
    lo = 0
    for i in range(parts):
        hi = lo + base + (1 if i < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def partition(seq: Any, parts: int, dist: str = "b") -> list[Any]:
    """Split a sequence into ``parts`` pieces: blocks (``dist='b'``) or round-robin ('r')."""
    if parts < 1:
        raise ValueError("cannot partition across zero engines")
    if not hasattr(seq, "__getitem__") or not hasattr(seq, "__len__"):
        seq = list(seq)
    if dist == "b":
        return [seq[lo:hi] for lo, hi in block_bounds(len(seq), parts)]
    if dist == "r":
        return [seq[i::parts] for i in range(parts)]
    raise ValueError(f"unknown dist {dist!r}: use 'b' (blocks) or 'r' (round-robin)")


def join(parts: Sequence[Any], dist: str = "b") -> Any:
    """Put pieces made by :func:`partition` back together."""
    if dist == "r":
        out: list[Any] = []
        longest = max((len(p) for p in parts), default=0)
        for i in range(longest):
            out.extend(p[i] for p in parts if i < len(p))
        return out
    if parts and all(type(p).__module__ == "numpy" and hasattr(p, "ndim") for p in parts):
        import numpy

        return numpy.concatenate(parts)
    out = []
    for p in parts:
        out.extend(p)
    return out


def aligned(sequences: Sequence[Any]) -> list[Any]:
    """Sequences for a map: each indexable (iterables made lists), cut to the shortest."""
    if not sequences:
        raise TypeError("map needs at least one sequence")
    seqs = [
        s if hasattr(s, "__getitem__") and hasattr(s, "__len__") else list(s) for s in sequences
    ]
    n = min(len(s) for s in seqs)
    return [s[:n] if len(s) != n else s for s in seqs]


def split(seqs: Sequence[Any], parts: int, dist: str = "b") -> list[tuple[Any, ...]]:
    """The arguments of one call per non-empty part of aligned sequences, each cut into
    ``parts`` by :func:`partition` (the empty parts are the last ones)."""
    pieces = [partition(s, parts, dist) for s in seqs]
    return [tuple(p[i] for p in pieces) for i in range(parts) if len(pieces[0][i])]


def chunks(seqs: Sequence[Any], size: int) -> list[tuple[Any, ...]]:
    """The arguments of one call per ``size`` consecutive elements of aligned sequences."""
    return [tuple(s[lo : lo + size] for s in seqs) for lo in range(0, len(seqs[0]), size)]
