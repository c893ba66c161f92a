"""Results of requests: futures that fill in as engines reply.

An :class:`AsyncResult` is a ``concurrent.futures.Future`` over one or more
messages. The client's I/O thread hands it each reply as it arrives; the
payload is unpickled only when the user asks for the value, in the user's
thread, so the I/O thread never spends time on results nobody reads.
"""

from __future__ import annotations

import asyncio
import operator
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import protocol, serialize
from ..errors import CompositeError, RemoteError, remote_error_from

if TYPE_CHECKING:
    from .client import Client


class Metadata(dict[str, Any]):
    """Per-message metadata, readable as attributes (``md.engine_id``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def new_metadata(msg_id: str, submitted: float, **extra: Any) -> Metadata:
    """Metadata of a freshly submitted message."""
    md = Metadata(
        msg_id=msg_id,
        submitted=_dt(submitted),
        started=None,
        completed=None,
        received=None,
        engine_id=None,
        engine_uuid=None,
        status=None,
        error=None,
        stdout="",
        stderr="",
        outputs=[],
        follow=[],
        after=[],
        label=None,
    )
    md.update(extra)
    return md


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


class Reply:
    """An engine's (or the controller's) reply to one message."""

    __slots__ = ("buffers", "header", "payload")

    def __init__(self, header: dict[str, Any], payload: list[Any], buffers: list[Any]) -> None:
        self.header = header
        self.payload = payload
        self.buffers = buffers

    @property
    def ok(self) -> bool:
        """True if the request succeeded."""
        return self.header.get("st") == "ok"

    def value(self) -> Any:
        """The returned object (unpickled now)."""
        return serialize.loads(self.payload[0], self.buffers)

    def error(self) -> RemoteError:
        """The error this reply carries."""
        content = protocol.decode(self.payload[0]) if self.payload else {}
        return remote_error_from(content, self.header.get("e"), self.header.get("m", "apply"))


class AsyncResult(Future[Any]):
    """The pending result of one or more messages; a ``concurrent.futures.Future``."""

    def __init__(
        self,
        client: Client,
        msg_ids: list[str],
        fname: str = "",
        single: bool = True,
        targets: Any = None,
    ) -> None:
        super().__init__()
        self._client = client
        self.msg_ids = list(msg_ids)
        self._fname = fname
        self._single = single and len(msg_ids) == 1
        self._targets = targets
        self._replies: dict[str, Reply] = {}
        self._order: list[str] = []
        self._cond = threading.Condition()
        self._value_lock = threading.Lock()
        self._has_value = False
        self._cached: Any = None
        self._metadata = [client.metadata_for(m) for m in self.msg_ids]

    # ---- filled in by the client's I/O thread --------------------------------------------

    def _deliver(self, msg_id: str, reply: Reply) -> None:
        with self._cond:
            self._replies[msg_id] = reply
            self._order.append(msg_id)
            done = len(self._replies) == len(self.msg_ids)
            self._cond.notify_all()
        if done:
            self._finish()

    def _finish(self) -> None:
        errors = [self._replies[m].error() for m in self.msg_ids if not self._replies[m].ok]
        if not errors:
            self.set_result(None)
        elif self._single:
            self.set_exception(errors[0])
        else:
            what = self._fname or "apply"
            self.set_exception(
                CompositeError(f"one or more exceptions raised in call to {what}", errors)
            )

    # ---- values ---------------------------------------------------------------------------

    def _values(self, return_exceptions: bool) -> list[Any]:
        out = []
        for m in self.msg_ids:
            reply = self._replies[m]
            if reply.ok:
                out.append(reply.value())
            elif return_exceptions:
                out.append(reply.error())
            else:
                raise reply.error()
        return out

    def _reconstruct(self, values: list[Any]) -> Any:
        return values[0] if self._single else values

    def _value(self) -> Any:
        with self._value_lock:
            if not self._has_value:
                self._cached = self._reconstruct(self._values(False))
                self._has_value = True
            return self._cached

    @staticmethod
    def _timeout(timeout: float | None) -> float | None:
        return None if timeout is None or timeout < 0 else timeout

    def get(self, timeout: float | None = None, return_exceptions: bool = False) -> Any:
        """Wait for and return the result; raise the remote error, or TimeoutError.

        With ``return_exceptions=True`` errors are returned in place of results.
        """
        if not self.wait(timeout):
            raise TimeoutError(f"result not ready within {timeout} s")
        if return_exceptions:
            return self._reconstruct(self._values(True))
        exc = self.exception(0)
        if exc is not None:
            raise exc
        return self._value()

    def result(self, timeout: float | None = None) -> Any:
        """The result, as ``concurrent.futures.Future.result`` gives it."""
        return self.get(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None or negative: forever); True if ready."""
        try:
            self.exception(self._timeout(timeout))
        except TimeoutError:
            return False
        return True

    def ready(self) -> bool:
        """True once every message has a reply."""
        return self.done()

    def successful(self) -> bool:
        """True if ready and without errors (raises if not ready, as ipyparallel does)."""
        if not self.done():
            raise ValueError("result is not ready yet")
        return self.exception(0) is None

    def get_dict(self, timeout: float | None = None) -> dict[int, Any]:
        """Results keyed by engine id."""
        values = self.get(timeout)
        values = [values] if self._single else values
        ids = [md["engine_id"] for md in self._metadata]
        if len(set(ids)) != len(ids):
            raise ValueError("get_dict needs at most one result per engine")
        return dict(zip(ids, values, strict=True))

    def abort(self) -> None:
        """Abort the messages of this result that have not started yet."""
        self._client.abort(self.msg_ids)

    # ---- metadata -----------------------------------------------------------------------------

    @property
    def metadata(self) -> Any:
        """Metadata dict (single message) or list of them."""
        return self._metadata[0] if self._single else self._metadata

    @property
    def progress(self) -> int:
        """How many messages have replies."""
        return len(self._replies)

    @property
    def elapsed(self) -> float:
        """Seconds since the first submission (until now, or until ready)."""
        first = min(md["submitted"] for md in self._metadata)
        if self.done():
            received = [md["received"] for md in self._metadata if md["received"] is not None]
            last = max(received) if received else datetime.now(UTC)
        else:
            last = datetime.now(UTC)
        return (last - first).total_seconds()

    @property
    def wall_time(self) -> float:
        """Seconds from the first submission to the last reply received."""
        self.wait()
        first = min(md["submitted"] for md in self._metadata)
        last = max(md["received"] for md in self._metadata)
        return float((last - first).total_seconds())

    @property
    def serial_time(self) -> float:
        """Sum of the engines' compute times."""
        self.wait()
        return sum(
            (md["completed"] - md["started"]).total_seconds()
            for md in self._metadata
            if md["started"] is not None and md["completed"] is not None
        )

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        md = self.__dict__.get("_metadata")
        if md and key in md[0]:
            values = [m[key] for m in md]
            return values[0] if self._single else values
        raise AttributeError(f"{type(self).__name__!r} has no attribute {key!r}")

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self.__getattr__(key)
        value = self.get()
        return (value if not self._single else [value])[key]

    def __len__(self) -> int:
        return len(self.msg_ids)

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        state = "finished" if self.done() else "pending"
        return f"<{type(self).__name__}({self._fname}): {state}>"


class AsyncMapResult(AsyncResult):
    """The result of a map: a flat list, iterable as chunks arrive."""

    def __init__(
        self,
        client: Client,
        msg_ids: list[str],
        sizes: list[int],
        fname: str = "",
        ordered: bool = True,
    ) -> None:
        super().__init__(client, msg_ids, fname, single=False)
        self._sizes = sizes
        self.ordered = ordered

    def _reconstruct(self, values: list[Any]) -> Any:
        out: list[Any] = []
        for v in values:
            if isinstance(v, BaseException):
                out.append(v)
            else:
                out.extend(v)
        return out

    def __len__(self) -> int:
        return sum(self._sizes)

    def __iter__(self) -> Iterator[Any]:
        if self.ordered:
            for m in self.msg_ids:
                with self._cond:
                    self._cond.wait_for(partial(operator.contains, self._replies, m))
                yield from self._chunk(m)
        else:
            seen = 0
            while seen < len(self.msg_ids):
                with self._cond:
                    self._cond.wait_for(partial(self._arrived_beyond, seen))
                    m = self._order[seen]
                seen += 1
                yield from self._chunk(m)

    def _arrived_beyond(self, n: int) -> bool:
        return len(self._order) > n

    def _chunk(self, msg_id: str) -> list[Any]:
        reply = self._replies[msg_id]
        if not reply.ok:
            raise reply.error()
        return list(reply.value())
