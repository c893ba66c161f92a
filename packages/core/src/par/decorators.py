"""Decorators and helpers that change how a function runs on engines.

``remote`` and ``parallel`` turn a function into one that runs on a view;
``require`` and ``depend`` attach prerequisites checked on the engine before
the function runs (a load-balanced task whose prerequisites fail there is
rejected with :class:`~par.UnmetDependency`, so the scheduler can try another
engine); ``interactive`` and ``Reference`` tie a function or an argument to
the engine's namespace.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .engine import namespace
from .errors import UnmetDependency

if TYPE_CHECKING:
    from .client.asyncresult import AsyncResult
    from .client.view import View

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


class RemoteFunction:
    """A function that runs on a view when called: ``view.apply(f, ...)``."""

    def __init__(
        self, view: View, f: Callable[..., Any], block: bool | None = None, **flags: Any
    ) -> None:
        if not callable(f):
            raise TypeError(f"remote decorates a callable, not {type(f).__name__}")
        unknown = sorted(set(flags) - set(view._flag_names))
        if unknown:
            raise KeyError(f"invalid flag(s) {', '.join(unknown)} for {view!r}")
        self.view = view
        self.func = f
        self.block = block
        self.flags = flags
        self.__name__ = getattr(f, "__name__", type(f).__name__)
        self.__doc__ = getattr(f, "__doc__", None)

    def _blocking(self) -> bool:
        return bool(self.view.block if self.block is None else self.block)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.view.temp_flags(**self.flags):
            ar = self.view.apply_async(self.func, *args, **kwargs)
        return ar.get() if self._blocking() else ar


class ParallelFunction(RemoteFunction):
    """A function called with whole sequences: each engine (or task) gets a part of them
    and the parts of the result are joined; ``.map`` calls it element by element."""

    def __init__(
        self,
        view: View,
        f: Callable[..., Any],
        dist: str = "b",
        block: bool | None = None,
        ordered: bool = True,
        chunksize: int | None = None,
        **flags: Any,
    ) -> None:
        _check_parallel_args(dist, chunksize)
        super().__init__(view, f, block, **flags)
        self.dist = dist
        self.ordered = ordered
        self.chunksize = chunksize

    def __call__(self, *sequences: Any) -> Any:
        from .client import partition
        from .client.view import DirectView, LoadBalancedView, _Joined

        if not sequences:
            raise TypeError("a parallel function needs at least one sequence")
        seqs = [
            s if hasattr(s, "__len__") and hasattr(s, "__getitem__") else list(s) for s in sequences
        ]
        n = min(len(s) for s in seqs)
        view, client = self.view, self.view.client
        make = lambda ids: _Joined(client, ids, self.dist)  # noqa: E731
        with view.temp_flags(**self.flags):
            if isinstance(view, DirectView):
                tg, _ = view._resolve()
                pieces = [partition.partition(s[:n], len(tg), self.dist) for s in seqs]
                calls: list[tuple[int, tuple[Any, ...], dict[str, Any]]] = [
                    (t, tuple(p[i] for p in pieces), {})
                    for i, t in enumerate(tg)
                    if len(pieces[0][i])
                ]
                ar: AsyncResult = client._direct_each(self.func, calls, make, view=view)
            elif isinstance(view, LoadBalancedView):
                parts = -(-n // self.chunksize) if self.chunksize else len(view)
                pieces = [partition.partition(s[:n], max(parts, 1), self.dist) for s in seqs]
                tasks: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
                    (tuple(p[i] for p in pieces), {})
                    for i in range(len(pieces[0]))
                    if len(pieces[0][i])
                ]
                ar = client._tasks(self.func, tasks, make, view._header_flags(), view=view)
            else:
                raise TypeError(f"parallel needs a DirectView or LoadBalancedView, not {view!r}")
        return ar.get() if self._blocking() else ar

    def map(self, *sequences: Any) -> Any:
        """``map(f, *sequences)`` on the view, one call per element."""
        kw: dict[str, Any] = {}
        from .client.view import LoadBalancedView

        if isinstance(self.view, LoadBalancedView):
            kw = {"ordered": self.ordered, "chunksize": self.chunksize or 1}
        with self.view.temp_flags(**self.flags):
            ar = self.view.map_async(self.func, *sequences, **kw)
        return ar.get() if self._blocking() else ar


def _check_parallel_args(dist: str, chunksize: int | None) -> None:
    """Refuse a bad ``dist`` or ``chunksize`` when the decorator is made, not when called."""
    if dist not in ("b", "r"):
        raise ValueError(f"unknown dist {dist!r}: use 'b' (blocks) or 'r' (round-robin)")
    if chunksize is not None and (not isinstance(chunksize, int) or chunksize < 1):
        raise ValueError(f"chunksize must be a positive integer, not {chunksize!r}")


def remote(
    view: View, block: bool | None = None, **flags: Any
) -> Callable[[Callable[..., Any]], RemoteFunction]:
    """Decorator: calling the function runs it on ``view`` (``view.apply``)."""

    def decorate(f: Callable[..., Any]) -> RemoteFunction:
        return RemoteFunction(view, f, block, **flags)

    return decorate


def parallel(
    view: View,
    dist: str = "b",
    block: bool | None = None,
    ordered: bool = True,
    chunksize: int | None = None,
    **flags: Any,
) -> Callable[[Callable[..., Any]], ParallelFunction]:
    """Decorator: calling the function with sequences runs it on parts of them across ``view``."""
    _check_parallel_args(dist, chunksize)

    def decorate(f: Callable[..., Any]) -> ParallelFunction:
        return ParallelFunction(view, f, dist, block, ordered, chunksize, **flags)

    return decorate
