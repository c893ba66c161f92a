"""``ipyparallel.client``: its ``client`` and ``view`` modules, on par."""
