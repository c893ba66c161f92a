"""``ipyparallel.client.client``: ``Client``, with ipyparallel's ``profile=`` and ``context=``.

Bridge: par finds a cluster by ``cluster_id`` and makes its own ZeroMQ context, while
the tests (and their ``clienttest`` base, for every test) call
``Client(profile="iptest", context=ctx)``. Without this no test could start; with it
the profile is the cluster id of the cluster ``tests/__init__.py`` starts, and the
context is not used. Remove it once ``par.Client`` takes both (issue 17).
"""

from typing import Any

import par

from .._resolve import public_names_of


class Client(par.Client):
    """``par.Client``, taking ``profile`` as the cluster id and ignoring ``context``."""

    def __init__(self, *args: Any, profile: str | None = None, context: Any = None, **kw: Any):
        if profile is not None:
            kw.setdefault("cluster_id", profile)
        super().__init__(*args, **kw)


__getattr__ = public_names_of("par", "ipyparallel.client.client")
