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


def dumps(obj: Any) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """Pickle ``obj``; return the pickle and its out-of-band buffers."""
    buffers: list[pickle.PickleBuffer] = []

    def keep(buf: pickle.PickleBuffer) -> bool:
        if buf.raw().nbytes < BUFFER_THRESHOLD:
            return True
        buffers.append(buf)
        return False

    out = io.BytesIO()
    try:
        _Pickler(out, protocol=5, buffer_callback=keep).dump(_mark_large_bytes(obj))
    except Exception as exc:
        what = type(obj).__name__
        raise SerializationError(f"cannot pickle {what}: {type(exc).__name__}: {exc}") from exc
    return out.getvalue(), buffers


def loads(data: Any, buffers: Sequence[Any] = ()) -> Any:
    """Unpickle what :func:`dumps` produced, reusing the received buffers."""
    data = getattr(data, "buffer", data)
    return pickle.loads(data, buffers=[getattr(b, "buffer", b) for b in buffers])


def dumps_function(f: Callable[..., Any]) -> tuple[bytes, str]:
    """Pickle a callable in band and return it with its content digest.

    Engines cache unpickled functions by digest, so a function sent with
    every task of a map is unpickled once per engine.
    """
    try:
        out = io.BytesIO()
        _Pickler(out, protocol=5).dump(f)
        data = out.getvalue()
    except Exception as exc:
        what = getattr(f, "__qualname__", type(f).__name__)
        raise SerializationError(f"cannot pickle {what}: {type(exc).__name__}: {exc}") from exc
    return data, hashlib.blake2b(data, digest_size=12).hexdigest()
