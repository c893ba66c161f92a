"""Name lookup of the shim: an ipyparallel name is the par name of the same spelling.

Only public names resolve: a name that starts with an underscore is ipyparallel's
private business, and the shim never reaches into par's private names to stand in
for it (the test that needs one fails, and is exempt or on the work list).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def public_names_of(module_name: str, shim_name: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` that resolves public names on ``module_name``."""

    def resolve(name: str) -> Any:
        module = import_module(module_name)
        if name.startswith("_") or not hasattr(module, name):
            raise AttributeError(f"{shim_name} has no {name!r}: {module_name} does not have it")
        return getattr(module, name)

    return resolve
