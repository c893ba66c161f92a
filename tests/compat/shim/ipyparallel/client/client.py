"""``ipyparallel.client.client``: ``Client`` and the other names, from par."""

from .._resolve import public_names_of

__getattr__ = public_names_of("par", "ipyparallel.client.client")
