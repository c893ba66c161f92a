"""Rich display from tasks: ``par.display``, and IPython's ``display`` on engines.

A task that calls ``par.display(obj)`` adds ``obj``'s MIME bundle to its
captured output, in order with what it prints: ``text/plain`` always, and
``text/html``, ``image/png`` and the rest as the object provides them (its
``_repr_mimebundle_`` and ``_repr_*_`` methods, as IPython's formatter finds
them; a matplotlib figure as PNG, see :mod:`par.engine.figures`). Binary
data (PNG, JPEG, PDF) travels base64-encoded, as in Jupyter. Outside a task,
``par.display`` shows the objects here, as IPython's ``display`` does.

Engines import IPython only when a cell needs it (:mod:`par.engine.cells`)
or user code imports it. :func:`hook_ipython` routes IPython's ``display``
and ``publish_display_data`` to the running task as the module loads;
outside a task they behave as IPython's own.
"""

from __future__ import annotations

import base64
import functools
import importlib
import sys
from collections.abc import Callable
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

from . import figures
from .capture import running_task

# What IPython's formatter asks an object for, besides text/plain and _repr_mimebundle_.
MIME_METHODS = {
    "text/html": "_repr_html_",
    "text/markdown": "_repr_markdown_",
    "text/latex": "_repr_latex_",
    "image/svg+xml": "_repr_svg_",
    "image/png": "_repr_png_",
    "image/jpeg": "_repr_jpeg_",
    "application/pdf": "_repr_pdf_",
    "application/json": "_repr_json_",
    "application/javascript": "_repr_javascript_",
}
# An attribute no object has: one that "has" it answers every name (a mock), and is
# not asked for representations.
_CANARY = "_par_canary_method_should_not_exist_"
_IPYTHON_MODULE = "IPython.core.display_functions"


def _method(obj: Any, name: str) -> Callable[..., Any] | None:
    """``obj``'s method ``name`` as IPython's formatter would call it (never a class's)."""
    if isinstance(obj, type):
        return None
    try:
        method = getattr(obj, name, None)
    except Exception:
        return None
    return method if callable(method) else None


def _represent(obj: Any, name: str, **kwargs: Any) -> Any:
    """Call a representation method; a failing one is reported on stderr and left out."""
    method = _method(obj, name)
    return None if method is None else _guarded(obj, f"{name}()", method, **kwargs)


def _guarded(obj: Any, what: str, render: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``render(*args, **kwargs)``, or None if it raises (said on stderr): a
    representation that fails is left out, and the rest is shown."""
    try:
        return render(*args, **kwargs)
    except Exception as exc:
        print(f"par: {type(obj).__name__}.{what} raised {exc!r}; left out", file=sys.stderr)
        return None


def _plain(obj: Any) -> str:
    """text/plain: IPython's pretty printer if IPython is loaded, else ``repr``."""
    pretty = sys.modules.get("IPython.lib.pretty")
    try:
        return str(pretty.pretty(obj)) if pretty is not None else repr(obj)
    except Exception:
        return f"<unprintable {type(obj).__name__} object>"


def _jsonable(value: Any) -> Any:
    """Binary data as base64 text, as Jupyter carries it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    return value


def mime_bundle(
    obj: Any, include: Any = None, exclude: Any = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``obj``'s representations by MIME type, and their metadata, as IPython's formatter
    computes them; ``include``/``exclude`` (MIME types) narrow the choice."""
    data: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    if _method(obj, _CANARY) is None:
        bundle = _represent(obj, "_repr_mimebundle_", include=include, exclude=exclude)
        if isinstance(bundle, tuple) and len(bundle) == 2:
            bundle, extra = bundle
            metadata.update(extra or {})
        if isinstance(bundle, dict):
            data.update(bundle)
        for mime, name in MIME_METHODS.items():
            if mime in data:
                continue
            value = _represent(obj, name)
            if isinstance(value, tuple) and len(value) == 2:
                value, metadata[mime] = value
            if value is not None:
                data[mime] = value
        if "image/png" not in data:  # a matplotlib figure, as IPython's formatter renders it
            value = _guarded(obj, "savefig(format='png')", figures.png, obj)
            if value is not None:
                data["image/png"] = value
    if "text/plain" not in data:
        data["text/plain"] = _plain(obj)
    wanted = {
        mime: _jsonable(value)
        for mime, value in data.items()
        if (include is None or mime in include) and (exclude is None or mime not in exclude)
    }
    return wanted, {k: v for k, v in metadata.items() if k in wanted or "/" not in k}


def _merged(metadata: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` updated by ``extra``, merging the dicts both have for a key."""
    out = dict(metadata)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def display(
    *objs: Any,
    include: Any = None,
    exclude: Any = None,
    metadata: dict[str, Any] | None = None,
    raw: bool = False,
) -> None:
    """Display objects: in a task, add their MIME bundles to its output, for the client.

    ``raw=True`` takes ready MIME bundles (dicts of MIME type to data); ``metadata``
    is merged into each display's metadata. Outside a task the objects show here, as
    IPython's ``display`` shows them. Raises TypeError if a bundle holds anything but
    plain data (str, bytes, numbers, lists, dicts).
    """
    task = running_task()
    if task is None:
        _show_here(objs, include, exclude, metadata, raw)
        return
    for obj in objs:
        if raw:
            if not isinstance(obj, dict):
                raise TypeError(
                    f"display(raw=True) takes MIME bundles (dicts), not {type(obj).__name__}"
                )
            data = {k: _jsonable(v) for k, v in obj.items()}
            md: dict[str, Any] = {}
        else:
            data, md = mime_bundle(obj, include, exclude)
        entry = {"data": data, "metadata": _merged(md, metadata) if metadata else md}
        if not task.add_display(entry):  # the task is over (one of its threads was late)
            _show_here((obj,), include, exclude, metadata, raw)


def _show_here(objs: tuple[Any, ...], include: Any, exclude: Any, metadata: Any, raw: bool) -> None:
    """Show objects in this process: IPython's display in a running shell, else print them
    (as IPython's display does without one)."""
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        show = importlib.import_module("IPython.display").display
        show(*objs, include=include, exclude=exclude, metadata=metadata, raw=raw)
    else:
        print(*objs)


def plain_text(data: dict[str, Any]) -> str:
    """A MIME bundle as text: its text/plain, else the types it holds (``<text/html>``)."""
    text = data.get("text/plain")
    return str(text) if text is not None else f"<{', '.join(data) or 'empty display'}>"


def result_display(value: Any) -> dict[str, Any]:
    """The display of an execute request's final value (its ``execute_result``)."""
    data, metadata = mime_bundle(value)
    return {"data": data, "metadata": metadata}


# ---- IPython -----------------------------------------------------------------------------


def hook_ipython() -> None:
    """Route IPython's display functions to the running task: now if IPython is loaded,
    else when user code first imports it (IPython is never imported here)."""
    module = sys.modules.get(_IPYTHON_MODULE)
    if module is not None:
        _route(module)
    elif not any(isinstance(f, _IPythonWatcher) for f in sys.meta_path):
        sys.meta_path.insert(0, _IPythonWatcher())


def _route(module: ModuleType) -> None:
    """Replace IPython's ``display`` and ``publish_display_data`` with task-aware ones."""
    if getattr(module.display, "_par_routed", False):
        return
    routed = {
        "display": (module.display, _in_task_display(module.display)),
        "publish_display_data": (
            module.publish_display_data,
            _in_task_publish(module.publish_display_data),
        ),
    }
    # Also where the originals were imported already (if IPython was loaded before us).
    for name in (module.__name__, "IPython.core.display", "IPython.display"):
        loaded = sys.modules.get(name)
        for attr, (original, function) in routed.items():
            if loaded is not None and getattr(loaded, attr, None) is original:
                setattr(loaded, attr, function)


def _in_task_display(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def display_in_task(
        *objs: Any,
        include: Any = None,
        exclude: Any = None,
        metadata: dict[str, Any] | None = None,
        raw: bool = False,
        **kwargs: Any,
    ) -> Any:
        # Display ids, updates and clearing have no meaning in a task's output: those
        # calls do what IPython does without a running shell (print the objects).
        if running_task() is None or any(kwargs.values()):
            return original(
                *objs, include=include, exclude=exclude, metadata=metadata, raw=raw, **kwargs
            )
        display(*objs, include=include, exclude=exclude, metadata=metadata, raw=raw)
        return None

    display_in_task._par_routed = True  # type: ignore[attr-defined]
    return display_in_task


def _in_task_publish(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def publish_in_task(
        data: dict[str, Any], metadata: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        if running_task() is None or any(kwargs.values()):
            return original(data, metadata, **kwargs)
        display(data, metadata=metadata, raw=True)
        return None

    return publish_in_task


class _IPythonWatcher:
    """A ``sys.meta_path`` finder that routes IPython's display module as it loads.

    It answers for that one module only, once; every other import passes by.
    """

    def find_spec(self, name: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if name != _IPYTHON_MODULE:
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _RoutingLoader(spec.loader)  # type: ignore[assignment]
        return spec


class _RoutingLoader:
    """Loads IPython's display module as usual, then routes its display functions."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _route(module)
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _IPythonWatcher)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
