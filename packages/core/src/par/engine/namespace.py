"""The engine's user namespace, and the helpers clients call in it.

Functions defined interactively on the client (in ``__main__``, or any
function cloudpickle sends by value), applied or pushed, run with this
namespace as their globals, as in ipyparallel: names pushed to or defined on the engine
resolve, and ``global`` assignments persist. Globals that cloudpickle
captured on the client fill in names the engine lacks, for the duration of
the call only, so a later call sees the client's new value. A client's
``use_cloudpickle()`` makes them win over the engine's names instead, and
``use_pickle()`` leaves them out, as those switch ipyparallel's serializer
(see :func:`use_captured`; it holds for the whole engine, as there).

``push``, ``pull`` and friends are sent by reference (they are importable),
so invoking one costs a few bytes.
"""

from __future__ import annotations

import builtins
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

# What every namespace has, and what clear() keeps: Python's, and IPython's once the
# engine's IPython shell is made (see par.engine.ipython_shell).
_defaults: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
user_ns: dict[str, Any] = dict(_defaults)
_MISSING = object()

# How functions defined on a client use the globals captured there (see use_captured).
FILL, CLIENT, ENGINE = "fill", "client", "engine"
_captured_policy = FILL


def use_captured(policy: str) -> None:
    """Choose how client-defined functions use the globals they captured on the client:
    ``FILL`` the names the engine lacks (par's default), ``CLIENT`` over the engine's
    (ipyparallel's ``use_cloudpickle``), ``ENGINE`` not at all for functions defined in
    the client's ``__main__`` and ``FILL`` for the others (its ``use_pickle``)."""
    global _captured_policy
    if policy not in (FILL, CLIENT, ENGINE):
        raise ValueError(f"unknown policy {policy!r}: use {FILL!r}, {CLIENT!r} or {ENGINE!r}")
    _captured_policy = policy


class Interactive:
    """A client-defined function rebound to run in the user namespace."""

    __slots__ = ("captured", "func", "interactive")

    def __init__(
        self, func: types.FunctionType, captured: dict[str, Any], interactive: bool
    ) -> None:
        self.func = func
        self.captured = captured
        # Defined in the client's __main__ (or @interactive): the functions that
        # ipyparallel's default pickling sends without their globals.
        self.interactive = interactive

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        policy = _captured_policy
        if policy == ENGINE and self.interactive:
            return self.func(*args, **kwargs)
        ns, captured = user_ns, self.captured
        shadowed = {k: ns[k] for k in captured if k in ns} if policy == CLIENT else {}
        added = [k for k in captured if k not in ns or k in shadowed]
        for k in added:
            ns[k] = captured[k]
        try:
            return self.func(*args, **kwargs)
        finally:  # the engine's own again, unless the call assigned the name itself
            for k in added:
                if ns.get(k, _MISSING) is captured[k]:
                    if k in shadowed:
                        ns[k] = shadowed[k]
                    else:
                        del ns[k]


def bind(f: Any) -> Callable[..., Any]:
    """Make a function that arrived by value (defined in ``__main__`` or a module the
    engine cannot import) run in the user namespace; leave importable functions alone."""
    if not isinstance(f, types.FunctionType):
        return f
    module = sys.modules.get(f.__module__)
    if module is not None and f.__globals__ is module.__dict__:
        return f
    g = with_globals(f, user_ns)
    captured = {k: v for k, v in f.__globals__.items() if not k.startswith("__")}
    return Interactive(g, captured, f.__module__ == "__main__") if captured else g


def with_globals(f: types.FunctionType, globals_: dict[str, Any]) -> types.FunctionType:
    """A copy of ``f`` whose global names resolve in ``globals_``."""
    g = types.FunctionType(f.__code__, globals_, f.__name__, f.__defaults__, f.__closure__)
    g.__kwdefaults__ = f.__kwdefaults__
    g.__qualname__ = f.__qualname__
    g.__doc__ = f.__doc__
    g.__dict__.update(f.__dict__)
    return g


FILENAME = "<par-execute>"
# An execute request's code compiled: its statements, and its final expression apart
# (None when its value is not wanted).
Cell = tuple[types.CodeType, types.CodeType | None]


def compile_cell(code: str, interactive: bool = False) -> Cell:
    """Compile source code to run in the user namespace; SyntaxError if it is not Python.

    ``interactive``: as IPython runs a cell, a final expression compiles apart, so that
    :func:`run_cell` returns its value (not when a semicolon ends the code).
    """
    if not interactive:
        return compile(code, FILENAME, "exec"), None
    import ast

    tree = ast.parse(code, FILENAME)
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr) or code.rstrip().endswith(";"):
        return compile(tree, FILENAME, "exec"), None
    tree.body.pop()
    return compile(tree, FILENAME, "exec"), compile(ast.Expression(last.value), FILENAME, "eval")


def run_cell(cell: Cell) -> Any:
    """Run compiled code in the user namespace; return its final expression's value, or None."""
    body, last = cell
    exec(body, user_ns)
    return None if last is None else eval(last, user_ns)


def push(ns: dict[str, Any]) -> None:
    """Set names in the user namespace; a key may also be an attribute or item of a
    value there (``"a.b"``, ``"a[0]"``). Functions defined on the client run in the
    namespace, as if defined there."""
    for key, value in ns.items():
        if key.isidentifier():
            user_ns[key] = bind(value)
        else:
            exec(_assignment(key), user_ns, {_PUSHED: bind(value)})


_PUSHED = "__par_pushed_value"


def _assignment(target: str) -> types.CodeType:
    """Code that assigns the pushed value to ``target``, an attribute or item of a value."""
    import ast

    try:
        (node,) = ast.parse(f"{target} = {_PUSHED}", "<par-push>").body
    except (SyntaxError, ValueError):  # not Python, or more than one statement
        node = None
    if not (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Attribute | ast.Subscript)
    ):
        raise ValueError(f"cannot push to {target!r}: use a name, or an attribute or item of one")
    return compile(ast.Module([node], []), "<par-push>", "exec")


def pull(names: str | Iterable[str]) -> Any:
    """Values of one name (or a list of names) from the user namespace; a name may also
    be an expression evaluated there (``"a.b"``, ``"g[0]"``)."""
    if isinstance(names, str):
        return _lookup(names)
    return [_lookup(n) for n in names]


def _lookup(name: str) -> Any:
    try:
        return user_ns[name]
    except KeyError:
        if name.isidentifier():
            raise NameError(f"name {name!r} is not defined on this engine") from None
    return eval(compile(name, "<par-pull>", "eval"), user_ns)


def call(f: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``f(*args, **kwargs)``: how a task applies a function of this namespace (a
    :class:`par.Reference` sent as an argument, so looked up afresh for each task)."""
    return f(*args, **kwargs)


def clear() -> None:
    """Empty the user namespace (keeping what every namespace has)."""
    user_ns.clear()
    user_ns.update(_defaults)


def keep(names: dict[str, Any]) -> None:
    """Make ``names`` part of what every namespace has: :func:`clear` keeps them."""
    _defaults.update(names)


def require(modules: Iterable[str], names: dict[str, Any]) -> str | None:
    """Import ``modules`` into the user namespace (as ``import a.b`` binds ``a``) and set
    ``names``; return the first module that cannot be imported, or None."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            return name
        top = name.partition(".")[0]
        user_ns[top] = sys.modules[top]
    user_ns.update({k: bind(v) for k, v in names.items()})
    return None
