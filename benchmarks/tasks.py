"""The functions the benchmarks send to engines.

They live in their own importable module (the child process puts this
folder on the engines' ``PYTHONPATH``), so every peer pickles them by
reference, as it would a function from any installed package.
"""

from __future__ import annotations

import os
from typing import Any


def noop(*args: Any) -> None:
    """Do nothing: the task whose cost is all overhead."""
    return None


def burn(n: int) -> int:
    """Spend CPU in pure Python: ``n`` loop iterations."""
    x = 0
    for i in range(n):
        x += i * i
    return x


def getpid() -> int:
    """The engine's process id."""
    return os.getpid()
