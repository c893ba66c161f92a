"""``ipyparallel.error``: ``par.error``, where par names its exceptions for ipyparallel code."""

from par.error import RemoteError

from ._resolve import public_names_of


class AlreadyDisplayedError(RemoteError):
    """Bridge: par's ``%px`` raises the remote error itself (docs/guide/migration.md), so
    nothing raises this; it exists because the tests' ``raises_remote`` names it in an
    ``except`` clause, which would otherwise fail on every remote error."""


__getattr__ = public_names_of("par.error", "ipyparallel.error")
