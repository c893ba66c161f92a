"""Turning Python objects into frames and back.

Objects are pickled with cloudpickle at protocol 5. Buffers of at least
``BUFFER_THRESHOLD`` bytes (NumPy arrays, large ``bytes``, ``bytearray``,
``memoryview``) leave the pickle as out-of-band buffers and travel as their
own ZeroMQ frames: they are never copied into the pickle, and the receiver
gets arrays that point straight into the received message.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import types
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import cloudpickle

BUFFER_THRESHOLD = 64 * 1024


def _bytes_from(buf: Any) -> bytes:
    return bytes(buf)


def _memoryview_from(buf: Any) -> memoryview:
    return memoryview(buf)


class _Pickler(cloudpickle.Pickler):
    """cloudpickle, with large bytes and memoryviews sent out of band, and code
    objects that keep their file name (cloudpickle blanks it), so that remote
    tracebacks say where the failing line is."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is types.CodeType:
            func, args = self.dispatch_table[types.CodeType](obj)
            return func, tuple(obj.co_filename if a == "<dynamic-code>" else a for a in args)
        if kind is _LargeBytes:
            return _bytes_from, (pickle.PickleBuffer(obj.data),)
        if kind is memoryview and obj.nbytes >= BUFFER_THRESHOLD and obj.contiguous:
            return _memoryview_from, (pickle.PickleBuffer(obj),)
        return super().reducer_override(obj)


class _LargeBytes:
    """Marks a large ``bytes`` for out-of-band pickling (the pickler never offers
    exact ``bytes`` to ``reducer_override``)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _mark_large_bytes(obj: Any, depth: int = 3) -> Any:
    """Wrap large bytes at the top of ``obj`` and inside its containers, ``depth`` levels down."""
    kind = type(obj)
    if kind is bytes:
        return _LargeBytes(obj) if len(obj) >= BUFFER_THRESHOLD else obj
    if depth <= 0:
        return obj
    if kind is tuple or kind is list:
        return kind(_mark_large_bytes(x, depth - 1) for x in obj)
    if kind is dict:
        return {k: _mark_large_bytes(v, depth - 1) for k, v in obj.items()}
    return obj


class SerializationError(Exception):
    """An object could not be pickled or unpickled."""


_SCALARS = frozenset({type(None), bool, int, float, complex, str, range})  # immutable builtins
PLAIN_ITEMS = 64


def _plain(obj: Any, depth: int = 3) -> bool:
    """Whether plain pickle sends ``obj`` as cloudpickle would: builtin scalars, small
    bytes, and small tuples, lists and dicts of them (exact types, so no subclass
    defined in ``__main__`` slips through by reference)."""
    kind = type(obj)
    if kind in _SCALARS:
        return True
    if kind is bytes:
        return len(obj) < BUFFER_THRESHOLD
    if kind is not tuple and kind is not list and kind is not dict:
        return False
    if depth <= 0 or len(obj) > PLAIN_ITEMS:
        return False
    if kind is dict:
        for k, v in obj.items():  # noqa: SIM110 (a loop, not all(): this runs for every task)
            if type(k) is not str or not _plain(v, depth - 1):
                return False
        return True
    for x in obj:  # noqa: SIM110 (a loop, not all(): this runs for every task sent)
        if not _plain(x, depth - 1):
            return False
    return True


_dill: Any = None  # the dill module while use_dill() is in force


def use_dill() -> None:
    """Pickle with dill from now on, in this process, as ipyparallel's ``use_dill`` does:
    dill also sends what cloudpickle refuses, such as a function holding a file open for
    writing. Raises ImportError if dill is not installed."""
    global _dill
    try:
        import dill
    except ImportError:
        raise ImportError("use_dill needs dill here and on the engines: pip install dill") from None
    _dill = dill
    _function_cache.clear()


def use_cloudpickle() -> None:
    """Pickle with cloudpickle again, par's default (undoing :func:`use_dill`)."""
    global _dill
    _dill = None
    _function_cache.clear()


def _pickler(out: io.BytesIO, keep: Callable[[pickle.PickleBuffer], bool] | None = None) -> Any:
    """The pickler in force: par's cloudpickle one, or dill's (globals a function uses
    pickled with it, so that an engine needs none of the client's modules)."""
    if _dill is not None:
        return _dill.Pickler(out, protocol=5, buffer_callback=keep, recurse=True)
    return _Pickler(out, protocol=5, buffer_callback=keep)


def dumps(obj: Any) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Pickle ``obj``; return the pickle and its out-of-band buffers."""
    if _plain(obj):  # the common small case, without cloudpickle's per-object hooks
        return pickle.dumps(obj, 5), []
    buffers: list[pickle.PickleBuffer] = []

    def keep(buf: pickle.PickleBuffer) -> bool:
        if buf.raw().nbytes < BUFFER_THRESHOLD:
            return True
        buffers.append(buf)
        return False

    out = io.BytesIO()
    try:
        # large bytes are marked for par's pickler only (dill would send the marks)
        _pickler(out, keep).dump(obj if _dill is not None else _mark_large_bytes(obj))
    except Exception as exc:
        what = type(obj).__name__
        raise SerializationError(f"cannot pickle {what}: {type(exc).__name__}: {exc}") from exc
    return out.getvalue(), buffers


def loads(data: Any, buffers: Sequence[Any] = ()) -> Any:
    """Unpickle what :func:`dumps` produced, reusing the received buffers."""
    data = getattr(data, "buffer", data)
    return pickle.loads(data, buffers=[getattr(b, "buffer", b) for b in buffers])


def deserialize_object(buffers: Sequence[Any], g: Any = None) -> tuple[Any, list[Any]]:
    """ipyparallel's name for :func:`loads` of a list of frames (a pickle, then its
    out-of-band buffers, as ``db_query``'s ``buffers`` and ``result_buffers`` hold): the
    object and the frames it did not use. ``g`` is accepted for ipyparallel code, unused."""
    frames = list(buffers)
    rest = iter(getattr(b, "buffer", b) for b in frames[1:])
    obj = pickle.loads(getattr(frames[0], "buffer", frames[0]), buffers=rest)
    return obj, list(rest)


FUNCTION_CACHE_SIZE = 256
_function_cache: dict[int, tuple[Any, list[Any], bytes, str]] = {}
_global_names: dict[types.CodeType, tuple[str, ...]] = {}


def _names_of(code: types.CodeType) -> tuple[str, ...]:
    """Every name a code object (and the code nested in it) may look up."""
    names = _global_names.get(code)
    if names is None:
        found = list(code.co_names)
        for const in code.co_consts:
            if type(const) is types.CodeType:
                found.extend(_names_of(const))
        if len(_global_names) >= FUNCTION_CACHE_SIZE:  # bounded, like the pickles
            _global_names.clear()
        names = _global_names[code] = tuple(found)
    return names


# cloudpickle's own test for what it pickles by reference (by name) rather than by value.
_by_reference = getattr(cloudpickle.cloudpickle, "_should_pickle_by_reference", lambda obj: False)
_MISSING = object()


def _unchanging(v: Any) -> bool:
    """Whether a value's pickle changes only if the value is replaced."""
    kind = type(v)
    if kind in _SCALARS or kind is bytes or v is _MISSING:
        return True
    if isinstance(v, (types.ModuleType, types.BuiltinFunctionType)):
        return True
    return isinstance(v, (type, types.FunctionType)) and bool(_by_reference(v))


def _state_of(f: Any, state: list[Any], depth: int = 3) -> bool:
    """Add to ``state`` what a function's pickle depends on; False if some of it cannot
    be checked for change.

    A function using a global list, say, is pickled anew on every call, since the list
    may have changed; one using only modules, constants and functions and classes that
    are pickled by name (or functions that themselves qualify) is not. States compare
    by identity, so ``1``, ``1.0`` and ``True`` (equal, with different pickles) differ.
    """
    if type(f) is not types.FunctionType or f.__dict__ or depth <= 0:
        return False
    glb = f.__globals__
    state += (f.__code__, f.__defaults__, f.__kwdefaults__)
    values = [glb.get(n, _MISSING) for n in _names_of(f.__code__)]
    values += [c.cell_contents for c in f.__closure__ or ()]
    values += [*(f.__defaults__ or ()), *(f.__kwdefaults__ or {}).values()]
    for v in values:
        state.append(v)
        if not _unchanging(v) and not _state_of(v, state, depth - 1):
            return False
    return True


def _same(a: list[Any], b: list[Any]) -> bool:
    """Whether two states hold the very same objects."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):  # noqa: SIM110 (a loop, not all(): runs for every task)
        if x is not y:
            return False
    return True


def dumps_function(f: Callable[..., Any]) -> tuple[bytes, str]:
    """Pickle a callable in band and return it with its content digest.

    Engines cache unpickled functions by digest, so a function sent with
    every task of a map is unpickled once per engine. Here, a function whose
    pickle provably cannot have changed since the last call is not pickled again.
    """
    state: list[Any] = []
    cacheable = _state_of(f, state)
    if cacheable:
        hit = _function_cache.get(id(f))
        if hit is not None and hit[0]() is f and _same(hit[1], state):
            return hit[2], hit[3]
    data, digest = _dumps_function(f)
    if cacheable:
        if len(_function_cache) >= FUNCTION_CACHE_SIZE:
            _function_cache.clear()
        _function_cache[id(f)] = (weakref.ref(f), state, data, digest)
    return data, digest


def _dumps_function(f: Callable[..., Any]) -> tuple[bytes, str]:
    try:
        out = io.BytesIO()
        _pickler(out).dump(f)
        data = out.getvalue()
    except Exception as exc:
        what = getattr(f, "__qualname__", type(f).__name__)
        raise SerializationError(f"cannot pickle {what}: {type(exc).__name__}: {exc}") from exc
    return data, hashlib.blake2b(data, digest_size=12).hexdigest()
