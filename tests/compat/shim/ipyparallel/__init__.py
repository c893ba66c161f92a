"""ipyparallel, resolved on par: the import shim of the conformance run (``nox -s compat``).

ipyparallel's own client tests import ``ipyparallel``; here every name they ask for
is par's public name of the same spelling, so each test checks par's behaviour as
a program written for ipyparallel would meet it. The few names par lacks on purpose
are bridged where they are defined (``error.py``, ``util.py``, ``serialize.py``), each
with its reason. The fixtures that run a par cluster for the
tests are in ``tests/__init__.py`` and ``tests/conftest.py``.
"""

from . import error
from ._resolve import public_names_of

__all__ = ["error"]

__getattr__ = public_names_of("par", "ipyparallel")
