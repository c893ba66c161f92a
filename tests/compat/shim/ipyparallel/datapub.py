"""``ipyparallel.datapub``: ``par.datapub`` (tasks import it on the engines)."""

from ._resolve import public_names_of

__getattr__ = public_names_of("par.datapub", "ipyparallel.datapub")
