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


def short_id(msg_id: str | None) -> str:
    """The first characters of a message id, enough to tell tasks apart on screen."""
    return "-" if not msg_id else msg_id[:8]
