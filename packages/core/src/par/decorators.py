"""Decorators and helpers that change how a function runs on engines.

``require`` and ``depend`` attach prerequisites checked on the engine before
the function runs (a load-balanced task whose prerequisites fail there is
rejected with :class:`~par.UnmetDependency`, so the scheduler can try another
engine); ``interactive`` and ``Reference`` tie a function or an argument to
the engine's namespace. Engines unpickle these, so this module imports
nothing of the client. (``remote`` and ``parallel``, which bind a function to
a view, are in :mod:`par.client.remotefunction`.)
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any, TypeVar, cast

from .engine import namespace
from .errors import UnmetDependency

F = TypeVar("F", bound=Callable[..., Any])


def interactive(f: F) -> F:
    """Run ``f`` in the engine's namespace, as if it were defined interactively there.

    As in ipyparallel, ``f`` is rebound to ``__main__``: its global names resolve to
    what was pushed to or defined on the engine (nothing of the module that defined
    it is sent along), or, called here, in this process's ``__main__``; its
    ``global`` assignments persist on the engine.
    """
    if isinstance(f, types.FunctionType):
        f = cast(F, namespace.with_globals(f, sys.modules["__main__"].__dict__))
    f.__module__ = "__main__"
    return f


class Reference:
    """An argument that stands for a variable of the engine's namespace, or an
    expression evaluated there, looked up on the engine when the task arrives:
    ``dv.apply(f, Reference("a"))``, ``Reference("g[0]")``."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not _is_expression(name):
            raise TypeError(f"Reference needs a variable name or an expression, not {name!r}")
        self.name = name

    def __reduce__(self) -> tuple[Any, ...]:
        # Unpickling on the engine *is* the lookup: no engine code needs to know Reference.
        return namespace.pull, (self.name,)

    def __repr__(self) -> str:
        return f"Reference({self.name!r})"


def _is_expression(text: str) -> bool:
    try:
        compile(text, "<Reference>", "eval")
    except (SyntaxError, ValueError):  # ValueError: a null byte
        return False
    return True


class _EngineCall:
    """A picklable wrapper whose functions run in the engine's namespace when called there."""

    func: Callable[..., Any]

    def _named_after(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.__name__ = getattr(func, "__name__", type(func).__name__)
        self.__doc__ = getattr(func, "__doc__", None)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_bound_func"}

    def _bound(self) -> Callable[..., Any]:
        bound = self.__dict__.get("_bound_func")
        if bound is None:
            bound = self.__dict__["_bound_func"] = namespace.bind(self.func)
        return bound


class Dependent(_EngineCall):
    """``func`` guarded by a check ``df(*dargs, **dkwargs)`` run first on the engine."""

    def __init__(
        self, func: Callable[..., Any], df: Callable[..., Any], *dargs: Any, **dkwargs: Any
    ) -> None:
        if not callable(func) or not callable(df):
            raise TypeError("dependent needs a function and a callable dependency check")
        self._named_after(func)
        self.df = df
        self.dargs = dargs
        self.dkwargs = dkwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        check = namespace.bind(self.df)
        if not check(*self.dargs, **self.dkwargs):
            name = getattr(self.df, "__name__", "dependency")
            raise UnmetDependency("UnmetDependency", f"{name}() was false on this engine")
        return self._bound()(*args, **kwargs)


class Requiring(_EngineCall):
    """``func`` run after importing modules and setting names in the engine's namespace."""

    def __init__(self, func: Callable[..., Any], modules: list[str], names: dict[str, Any]) -> None:
        if not callable(func):
            raise TypeError(f"require decorates a callable, not {type(func).__name__}")
        self._named_after(func)
        self.modules = modules
        self.names = names

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        missing = namespace.require(self.modules, self.names)
        if missing is not None:
            raise UnmetDependency("UnmetDependency", f"cannot import {missing!r} on this engine")
        return self._bound()(*args, **kwargs)


def dependent(
    func: Callable[..., Any], df: Callable[..., Any], *dargs: Any, **dkwargs: Any
) -> Dependent:
    """``func`` that runs only where ``df(*dargs, **dkwargs)`` is true (else UnmetDependency)."""
    return Dependent(func, df, *dargs, **dkwargs)


def depend(
    df: Callable[..., Any], *dargs: Any, **dkwargs: Any
) -> Callable[[Callable[..., Any]], Dependent]:
    """Decorator: run the function only on engines where ``df(*dargs, **dkwargs)`` is true."""
    if not callable(df):
        raise TypeError(f"depend needs a callable dependency check, not {type(df).__name__}")

    def decorate(func: Callable[..., Any]) -> Dependent:
        return Dependent(func, df, *dargs, **dkwargs)

    return decorate


def require(*requirements: Any, **mapping: Any) -> Callable[[Callable[..., Any]], Requiring]:
    """Decorator: before the function runs on an engine, import the named modules (strings or
    module objects) into its namespace and push the given functions/objects (by their
    ``__name__``) and ``name=value`` pairs; an engine that cannot import one rejects the task."""
    modules: list[str] = []
    names: dict[str, Any] = {}
    for r in requirements:
        if isinstance(r, str):
            modules.append(r)
        elif isinstance(r, types.ModuleType):
            modules.append(r.__name__)
        elif hasattr(r, "__name__"):
            names[r.__name__] = r
        else:
            raise TypeError(
                f"require takes module names, modules, or named functions/classes, not {r!r}; "
                "pass other objects as name=value"
            )
    names.update(mapping)

    def decorate(func: Callable[..., Any]) -> Requiring:
        return Requiring(func, modules, names)

    return decorate
