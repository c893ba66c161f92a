"""Decorators that change how a function runs on engines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def interactive(f: F) -> F:
    """Run ``f`` in the engine's namespace, as if it were defined interactively there.

    Its global names then resolve to what was pushed to or defined on the
    engine, and its ``global`` assignments persist there.
    """
    f.__module__ = "__main__"
    return f
