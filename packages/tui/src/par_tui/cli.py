"""``par monitor`` argument parsing (the monitor itself is not yet available)."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Entry point of ``par monitor``."""
    print("par monitor: error: the monitor is not yet available in this version of par", file=sys.stderr)
    return 1
