"""Short human forms of durations, sizes and ids, shared by the widgets."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """``3.2s``, ``4m05s``, ``2h03m``, ``1d04h`` (``-`` when unknown)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def age(seconds: float | None) -> str:
    """How long ago or for how long, coarsely: ``12s``, ``5m``, ``2h03m``, ``1d04h`` (a line
    showing it then changes once a minute, not every second)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds) // 60}m"
    return duration(seconds)


def size(n: int | None) -> str:
    """Bytes as ``512K``, ``48.2M``, ``1.5G`` (``-`` when unknown)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit in ("B", "K") else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}T"


def percent(value: float | None) -> str:
    """A share as ``35%`` (``-`` when unknown); a process may use more than one core."""
    return "-" if value is None else f"{value:.0f}%"


def short_id(msg_id: str | None) -> str:
    """A task's id on screen: its client's first 4 hex digits and its number, ``3fa9-1c2``.

    par's message ids are the client's 16-hex-digit prefix, a dash and a count, so the
    prefix alone is the same for every task of a client; other ids show their first 8
    characters.
    """
    if not msg_id:
        return "-"
    prefix, dash, count = msg_id.rpartition("-")
    return f"{prefix[:4]}-{count}" if dash and prefix else msg_id[:8]


def task(msg_id: str | None, label: str | None) -> str:
    """A task's short id, then its label when its client set one."""
    return short_id(msg_id) if not label else f"{short_id(msg_id)} {label}"


def task_words(msg_id: str | None, label: str | None) -> tuple[str, ...]:
    """What a search for a task matches: its full id, short id and label."""
    return tuple(w for w in (msg_id, short_id(msg_id) if msg_id else None, label) if w)


def count(n: int) -> str:
    """A count in at most 5 characters: ``12345``, ``123k``, ``1.2M``."""
    if n < 100_000:
        return str(n)
    if n < 1_000_000:
        return f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def rate(per_second: float, unit: str = "/s") -> str:
    """A rate in at most 5 characters and its unit: ``8.5/s``, ``120/s``, ``12.3k/s``."""
    if per_second < 100:
        return f"{per_second:.1f}{unit}"
    if per_second < 10_000:
        return f"{per_second:.0f}{unit}"
    return f"{per_second / 1000:.1f}k{unit}"
