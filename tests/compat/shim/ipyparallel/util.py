"""``ipyparallel.util``: the two names the tests use."""

from datetime import UTC

from par import interactive

utc = UTC  # ipyparallel's name for the UTC tzinfo of its timestamps

__all__ = ["interactive", "utc"]
