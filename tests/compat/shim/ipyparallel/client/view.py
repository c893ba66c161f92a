"""``ipyparallel.client.view``: the views and the lazy map iterator, from par."""

from .._resolve import public_names_of

__getattr__ = public_names_of("par", "ipyparallel.client.view")
