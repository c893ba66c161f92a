"""``ipyparallel.serialize``: par's serialization has no ``can``/``uncan``.

ipyparallel wraps objects in "canned" forms before pickling; par pickles with
cloudpickle and has no such layer. The names exist so that ``test_dependency``
imports; the one test that calls them is exempt.
"""

from ._resolve import public_names_of


def can(obj: object) -> object:
    """Bridge: ipyparallel's private canning, which par does not have."""
    raise NotImplementedError("ipyparallel.serialize.can: par has no canning layer")


def uncan(obj: object, g: dict | None = None) -> object:
    """Bridge: ipyparallel's private uncanning, which par does not have."""
    raise NotImplementedError("ipyparallel.serialize.uncan: par has no canning layer")


__getattr__ = public_names_of("par.serialize", "ipyparallel.serialize")
