"""The Client: a connection to one cluster's controller.

Requests leave through a request connection shared by the user's threads
(under a lock); everything coming back arrives on a separate reply
connection owned by the I/O thread (:mod:`par.client.io`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import zmq

from .. import connection, protocol, serialize
from ..errors import NoEnginesRegistered, ParError
from ..protocol import Session
from .asyncresult import AsyncHubResult, AsyncMapResult, AsyncResult, Metadata, new_metadata
from .io import IOThread
from .outbox import RequestSender

METADATA_LIMIT = 10_000
TASK_BATCH = 128  # load-balanced tasks per message from a map


class BoundedDict(OrderedDict[str, Any]):
    """A dict that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if len(self) > self.limit:
            self.popitem(last=False)


class Results(Mapping[str, Any]):
    """A read-only view of a client's finished results, keyed by message id."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def _finished(self) -> list[str]:
        known = self._client._known
        return [m for m in self._client.metadata if m in known and m not in self._client._pending]

    def __getitem__(self, msg_id: str) -> Any:
        ar = self._client._known.get(msg_id)
        if ar is None or msg_id in self._client._pending:
            raise KeyError(msg_id)
        reply = ar._replies[msg_id]
        return reply.value() if reply.ok else reply.error()

    def __iter__(self) -> Iterator[str]:
        return iter(self._finished())

    def __len__(self) -> int:
        return len(self._finished())


class Client:
    """A connection to a running cluster.

    ``Client()`` connects to the default cluster, ``Client(cluster_id="big")``
    to a named one, ``Client("path/to/connection.json")`` to the cluster a
    connection file describes. If the controller is silent for
    ``controller_timeout`` seconds, outstanding results fail with
    ``ControllerLost`` instead of waiting forever; the client reconnects by
    itself when a restored controller comes back.
    """

    def __init__(
        self,
        connection_info: str | Path | None = None,
        *,
        cluster_id: str | None = None,
        timeout: float = 10.0,
        cluster: Any = None,
        controller_timeout: float = 10.0,
    ) -> None:
        path = connection.resolve(connection_info, cluster_id)
        self._info = connection.load(path, timeout=timeout)
        self.cluster = cluster
        self.controller_timeout = controller_timeout
        self.session = Session(self._info.key_bytes)
        self._ident = uuid.uuid4().bytes
        # Message ids: this client's random prefix and a count, unique across clients and
        # far cheaper than a uuid per task.
        self._id_prefix = self._ident[:8].hex()
        self._id_count = itertools.count()
        self._ctx = zmq.Context()
        self._req = self._ctx.socket(zmq.DEALER)
        self._req.setsockopt(zmq.LINGER, 1000)
        self._req.setsockopt(zmq.SNDHWM, 0)
        self._info.secure(self._req)
        self._req.connect(self._info.client_url)
        self._sender = RequestSender(self._req, self.session)
        self._pending: dict[str, AsyncResult] = {}
        self._known: weakref.WeakValueDictionary[str, AsyncResult] = weakref.WeakValueDictionary()
        self._queries: dict[str, Future[Any]] = {}
        self._engines: dict[int, dict[str, Any]] = {}
        self._gone: dict[int, int] = {}  # lost engine id -> pid, to explain EngineErrors
        self._engines_changed = threading.Condition()
        self.metadata: BoundedDict = BoundedDict(METADATA_LIMIT)
        self.history: list[str] = []
        self.block = False
        self._closed = False
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []

        qid, first = self._query_frames("connect", {})
        fut = self._expect(qid)
        self._io = IOThread(self, first)
        self._io.start()
        try:
            state = self._wait_query(fut, timeout, "connect")
        except BaseException:
            self.close()
            raise
        with self._engines_changed:
            for e in state["engines"]:
                self._engines[int(e["id"])] = e

    # ---- plumbing ----------------------------------------------------------------------------

    def _query_frames(self, op: str, args: dict[str, Any]) -> tuple[str, list[Any]]:
        qid = protocol.new_id()
        header = {"t": "query", "op": op, "qid": qid, "c": self._ident, **args}
        return qid, self.session.serialize(header)

    def _expect(self, qid: str) -> Future[Any]:
        fut: Future[Any] = Future()
        self._queries[qid] = fut
        return fut

    def _wait_query(self, fut: Future[Any], timeout: float | None, op: str) -> Any:
        try:
            reply = fut.result(timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the controller at {self._info.client_url} did not answer {op!r} within "
                f"{timeout} s; is the cluster running? (`par list`)"
            ) from None
        if not reply.get("ok"):
            raise ParError(f"{op} failed on the controller: {reply.get('err')}")
        return reply.get("d")

    def _query(self, op: str, timeout: float | None = 10.0, **args: Any) -> Any:
        self._check_open()
        qid, frames = self._query_frames(op, args)
        fut = self._expect(qid)
        self._send_frames(frames)
        return self._wait_query(fut, timeout, op)

    def _send_frames(self, frames: list[Any]) -> None:
        self._sender.send_frames(frames)

    def _check_open(self) -> None:
        if self._closed:
            raise ParError("this client is closed")

    def _on_query_reply(self, h: dict[str, Any]) -> None:
        fut = self._queries.pop(h.get("qid", ""), None)
        if fut is not None and not fut.done():
            fut.set_result(h)

    def subscribe_events(
        self, callback: Callable[[str, dict[str, Any]], None], tasks: bool = False
    ) -> None:
        """Call ``callback(kind, data)`` (from the I/O thread) for every cluster event.

        Kinds: ``engine_registering``, ``engine_up``, ``engine_lost``, ``engine_stopped``,
        ``controller_stopped``; with ``tasks=True`` also ``tasks`` (batches of finished-task
        notices) and ``stream`` (every engine's streamed output), as ``par monitor`` uses.
        """
        self._listeners.append(callback)
        if tasks:
            self._query("monitor", on=True)

    def _on_stream_event(self, h: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener("stream", h)

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        for listener in self._listeners:
            try:
                listener(kind, data)
            except Exception:
                logging.getLogger("par.client").exception("event listener failed")
        with self._engines_changed:
            if kind == "engine_up":
                self._engines[int(data["id"])] = data
            elif kind in ("engine_lost", "engine_stopped"):
                self._engines.pop(int(data["id"]), None)
                self._gone[int(data["id"])] = int(data.get("pid", 0))
            self._engines_changed.notify_all()
        if kind == "controller_stopped":
            self._io.fail_all("EngineError", "the controller stopped")

    def metadata_for(self, msg_id: str) -> Metadata:
        """The metadata record of a message (created on first use)."""
        md = self.metadata.get(msg_id)
        if md is None:
            md = new_metadata(msg_id, time.time())
            self.metadata[msg_id] = md
        return md

    # ---- sending work ----------------------------------------------------------------------

    @staticmethod
    def _apply_frames(
        f: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
    ) -> tuple[list[Any], list[Any], str]:
        """Payload and buffers of one apply request, and the function's digest."""
        if not callable(f):
            raise TypeError(f"apply needs a callable, not {type(f).__name__}")
        fdata, digest = serialize.dumps_function(f)
        adata, bufs = serialize.dumps((tuple(args), kwargs))
        return [fdata, adata], [b.raw() for b in bufs], digest

    def _register(self, n: int, make_ar: Callable[[list[str]], AsyncResult]) -> AsyncResult:
        """Make ids and their result before anything is sent, so no reply can come early."""
        self._check_open()
        prefix, count = self._id_prefix, self._id_count
        ids = [f"{prefix}-{next(count):x}" for _ in range(n)]
        ar = make_ar(ids)
        for mid in ids:
            self._pending[mid] = ar
            self._known[mid] = ar
        self.history.extend(ids)
        if len(self.history) > METADATA_LIMIT:
            del self.history[: len(self.history) - METADATA_LIMIT]
        return ar

    def _send(
        self,
        header: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
        tracked: AsyncResult | None = None,
    ) -> None:
        header["c"] = self._ident
        header["ts"] = time.time()
        if tracked is None:
            self._sender.send((header, payload, buffers))
            return
        # track=True: the result learns when ZeroMQ let go of the buffers
        frames = self.session.serialize(header, payload, buffers)
        tracked._add_tracker(self._sender.send_frames(frames, track=True))

    def _direct(
        self,
        kind: str,
        targets: list[int],
        payload: list[Any],
        buffers: list[Any],
        make_ar: Callable[[list[str]], AsyncResult],
        extra: dict[str, Any] | None = None,
        track: bool = False,
    ) -> AsyncResult:
        """Send one request to several engines as a single message the controller fans out."""
        ar = self._register(len(targets), make_ar)
        for mid, t in zip(ar.msg_ids, targets, strict=True):
            ar._metadata_of(mid)["engine_id"] = t
        header = {"t": kind, "q": "d", "ids": ar.msg_ids, "tg": list(targets), **(extra or {})}
        self._send(header, payload, buffers, ar if track else None)
        return ar

    def _direct_each(
        self,
        f: Callable[..., Any],
        calls: Sequence[tuple[int, tuple[Any, ...], dict[str, Any]]],
        make_ar: Callable[[list[str]], AsyncResult],
        extra: dict[str, Any] | None = None,
        track: bool = False,
    ) -> AsyncResult:
        """Send ``f`` to several engines, each with its own (target, args, kwargs)."""
        fdata, digest = serialize.dumps_function(f)
        ar = self._register(len(calls), make_ar)
        for mid, (target, args, kwargs) in zip(ar.msg_ids, calls, strict=True):
            ar._metadata_of(mid)["engine_id"] = target
            header = {"t": "apply", "q": "d", "ids": [mid], "tg": [target], "f": digest}
            header.update(extra or {})
            self._send_call(header, fdata, args, kwargs, ar if track else None)
        return ar

    def _send_call(
        self,
        header: dict[str, Any],
        fdata: bytes,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tracked: AsyncResult | None,
    ) -> None:
        """Send one call of an already pickled function."""
        adata, bufs = serialize.dumps((args, kwargs))
        self._send(header, [fdata, adata], [b.raw() for b in bufs], tracked)

    def _tasks(
        self,
        f: Callable[..., Any],
        calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
        make_ar: Callable[[list[str]], AsyncResult],
        extra: dict[str, Any] | None = None,
        track: bool = False,
    ) -> AsyncResult:
        """Send load-balanced tasks of one function, one per (args, kwargs); one result for all.

        Up to ``TASK_BATCH`` tasks travel in one message (the function once, then each
        task's arguments): the controller still schedules each on its own.
        """
        fdata, digest = serialize.dumps_function(f)
        ar = self._register(len(calls), make_ar)
        for lo in range(0, len(calls), TASK_BATCH):
            ids = ar.msg_ids[lo : lo + TASK_BATCH]
            header = {"t": "apply", "q": "t", "ids": ids, "f": digest, **(extra or {})}
            payload: list[Any] = [fdata]
            buffers: list[Any] = []
            counts: list[int] = []
            for args, kwargs in calls[lo : lo + TASK_BATCH]:
                adata, bufs = serialize.dumps((args, kwargs))
                payload.append(adata)
                buffers.extend(b.raw() for b in bufs)
                counts.append(len(bufs))
            if buffers:
                header["nb"] = counts
            self._send(header, payload, buffers, ar if track else None)
        return ar

    # ---- engines -----------------------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        """Ids of the engines registered and ready, in order."""
        with self._engines_changed:
            return sorted(self._engines)

    def engines(self) -> dict[int, dict[str, Any]]:
        """What the controller reported about each registered engine."""
        with self._engines_changed:
            return dict(self._engines)

    def wait_for_engines(
        self, n: int | None = None, *, timeout: float = -1, block: bool = True
    ) -> None:
        """Wait until at least ``n`` engines are registered (all current ones if ``n`` is None)."""
        want = n if n is not None else max(len(self._engines), 1)
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        with self._engines_changed:
            while len(self._engines) < want:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"{len(self._engines)} of {want} engines registered within {timeout} s"
                    )
                self._engines_changed.wait(left if left is None else min(left, 1.0))

    def _build_targets(self, targets: Any) -> list[int]:
        ids = self.ids
        if targets is None or targets == "all":
            if not ids:
                raise NoEnginesRegistered(
                    "no engines are registered; start some (`par engines -n N`) or wait with "
                    "rc.wait_for_engines(n)"
                )
            return ids
        if isinstance(targets, int):
            if targets < 0:
                targets = ids[targets]
            if targets not in ids:
                raise IndexError(f"no such engine: {targets} (registered: {ids})")
            return [targets]
        if isinstance(targets, slice):
            chosen = ids[targets]
            if not chosen:
                raise NoEnginesRegistered(f"the slice {targets} selects none of the engines {ids}")
            return chosen
        out = [int(t) for t in targets]
        if not out:
            raise NoEnginesRegistered("an empty list of targets: name at least one engine")
        missing = [t for t in out if t not in ids]
        if missing:
            raise IndexError(f"no such engines: {missing} (registered: {ids})")
        return out

    def __getitem__(self, key: int | slice | Sequence[int]) -> DirectView:
        if isinstance(key, int):
            self._build_targets(key)
            return DirectView(self, key)
        return DirectView(self, self._build_targets(key))

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterable[DirectView]:
        return iter([self[i] for i in self.ids])

    def direct_view(self, targets: Any = "all", **flags: Any) -> DirectView:
        """A DirectView on ``targets`` ('all' follows engines as they come and go)."""
        if targets != "all":
            self._build_targets(targets)
        return DirectView(self, targets, **flags)

    def load_balanced_view(self, targets: Any = None, **flags: Any) -> LoadBalancedView:
        """A LoadBalancedView: each task goes to a free engine (of ``targets``, if given)."""
        if targets is not None:
            self._build_targets(targets)
        return LoadBalancedView(self, targets=targets, **flags)

    def broadcast_view(
        self, targets: Any = "all", is_coalescing: bool = False, **flags: Any
    ) -> BroadcastView:
        """A BroadcastView: one client message reaches every target (replies coalesced if asked)."""
        if targets != "all":
            self._build_targets(targets)
        return BroadcastView(self, targets, is_coalescing=is_coalescing, **flags)

    def executor(self, targets: Any = None) -> Any:
        """A ``concurrent.futures.Executor`` over a load-balanced view of ``targets``."""
        return self.load_balanced_view(targets).executor

    def activate(self, targets: Any = "all", suffix: str = "") -> DirectView:
        """A DirectView on ``targets`` whose ``%px`` magics are registered in IPython."""
        view = self.direct_view(targets)
        view.activate(suffix)
        return view

    def clear(self, targets: Any = None, block: bool | None = None) -> Any:
        """Empty the namespaces of engines (all by default)."""
        return self.direct_view(targets if targets is not None else "all").clear(block=block)

    # ---- the hub's records ---------------------------------------------------------------

    def get_result(
        self, indices_or_msg_ids: Any = None, block: bool | None = None, owner: bool = True
    ) -> Any:
        """The result of earlier tasks, by message id or index into ``history``, from any client.

        Results still held here are returned from memory; others are fetched from the
        controller's records (which keep the latest results within their bounds).
        """
        ids = self._msg_ids(indices_or_msg_ids if indices_or_msg_ids is not None else -1)
        local = {id(self._known[m]): self._known[m] for m in ids if m in self._known}
        if len(local) == 1:
            ar = next(iter(local.values()))
            if set(ar.msg_ids) == set(ids):
                return ar.get() if block else ar
        status = self._query("result_status", ids=ids)
        if status["unknown"]:
            raise KeyError(
                f"no record of message(s) {', '.join(status['unknown'])} on the controller"
            )
        ar = self._register_existing(ids, lambda m: AsyncHubResult(self, m))
        self._query("resend", ids=ids)
        return ar.get() if block else ar

    def _register_existing(
        self, ids: list[str], make_ar: Callable[[list[str]], AsyncResult]
    ) -> AsyncResult:
        ar = make_ar(ids)
        for mid in ids:
            self._pending[mid] = ar
        return ar

    def _msg_ids(self, jobs: Any) -> list[str]:
        if isinstance(jobs, int):
            return [self.history[jobs]]
        if isinstance(jobs, str):
            return [jobs]
        if isinstance(jobs, AsyncResult):
            return list(jobs.msg_ids)
        out: list[str] = []
        for job in jobs:
            out.extend(self._msg_ids(job))
        return out

    @property
    def results(self) -> Results:
        """Results of this client's finished tasks, by message id (bounded like ``metadata``)."""
        return Results(self)

    def result_status(self, msg_ids: Any, status_only: bool = True) -> dict[str, Any]:
        """Which of the given tasks are pending and which completed (and their records)."""
        status = self._query("result_status", ids=self._msg_ids(msg_ids))
        if status_only:
            return {k: status[k] for k in ("pending", "completed", "unknown")}
        return dict(status)

    def purge_results(self, jobs: Any = (), targets: Any = ()) -> int:
        """Forget finished tasks' records on the controller ('all', or some jobs / engines)."""
        if jobs == "all" or targets == "all":
            return int(self._query("purge"))
        ids = self._msg_ids(jobs) if jobs else None
        tg = self._build_targets(targets) if targets else None
        if ids is None and tg is None:
            raise ValueError("purge_results needs jobs, targets, or 'all'")
        for mid in ids or []:
            self.metadata.pop(mid, None)
        return int(self._query("purge", ids=ids, targets=tg))

    def purge_everything(self) -> None:
        """Forget every finished record, here and on the controller."""
        self.purge_results("all")
        for mid in [m for m in self.metadata if m not in self._pending]:
            self.metadata.pop(mid, None)
        self.history.clear()

    def hub_history(self) -> list[str]:
        """Message ids of every task the controller still has a record of, oldest first."""
        return list(self._query("history"))

    def db_query(
        self, query: dict[str, Any], keys: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Task records matching a Mongo-style query ($in $nin $eq $ne $gt $gte $lt $lte $glob).

        Record keys: msg_id, client, queue, method, submitted, engine_id, started, completed,
        status, ename, label.
        """
        return list(self._query("db_query", query=query, keys=keys))

    # ---- waiting and control -----------------------------------------------------------------

    @property
    def outstanding(self) -> set[str]:
        """Message ids still waiting for a reply."""
        return set(self._pending)

    def wait(self, jobs: Any = None, timeout: float = -1) -> bool:
        """Wait for results (all outstanding by default); True if all are done in time."""
        if jobs is None:
            targets: list[Any] = list({id(a): a for a in self._pending.values()}.values())
        elif isinstance(jobs, AsyncResult | str):
            targets = [jobs]
        else:
            targets = list(jobs)
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        for job in targets:
            ar = self._pending.get(job) if isinstance(job, str) else job
            if ar is None:
                continue
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not ar.wait(left):
                return False
        return True

    def queue_status(self, targets: Any = "all", verbose: bool = False) -> dict[Any, Any]:
        """Per-engine queue counts and the number of unassigned tasks."""
        raw = self._query("queue_status")
        out: dict[Any, Any] = {}
        wanted = None if targets in (None, "all") else set(self._build_targets(targets))
        for key, value in raw.items():
            if key == "unassigned":
                out[key] = value
            elif wanted is None or int(key) in wanted:
                out[int(key)] = value
        return out

    def abort(
        self,
        jobs: Any = None,
        targets: Any = None,
        block: bool | None = None,
        everyone: bool = False,
    ) -> None:
        """Abort tasks that have not started (all of this client's outstanding tasks by default).

        ``everyone=True`` aborts every client's queued tasks (what ``par monitor`` offers).
        """
        if everyone:
            self._query("abort", all=True)
            return
        ids = list(self._pending) if jobs is None else self._msg_ids(jobs)
        self._query("abort", ids=ids)

    def send_signal(self, sig: int | str, targets: Any = None, block: bool | None = None) -> None:
        """Send a signal (number or name such as 'SIGINT') to engine processes."""
        tg = None if targets is None else self._build_targets(targets)
        self._query("signal", sig=sig, targets=tg)

    def shutdown(
        self,
        targets: Any = "all",
        restart: bool = False,
        hub: bool = False,
        block: bool | None = None,
    ) -> None:
        """Stop engines (and the controller too with ``hub=True``)."""
        if restart:
            raise NotImplementedError(
                "restart engines through their cluster: Cluster.restart_engines()"
            )
        tg = None if targets in (None, "all") else self._build_targets(targets)
        stopped = self._query("shutdown", targets=tg, hub=hub)
        if block or (block is None and self.block) or hub:
            deadline = time.monotonic() + 10
            with self._engines_changed:
                while set(stopped) & set(self._engines) and time.monotonic() < deadline:
                    self._engines_changed.wait(0.2)

    def status(self, timeout: float = 10.0) -> dict[str, Any]:
        """The controller's view of the cluster: engines, task counts, uptime.

        Raises TimeoutError if the controller does not answer within ``timeout`` seconds.
        """
        return dict(self._query("status", timeout=timeout))

    def close(self, linger: int | None = None) -> None:
        """Disconnect from the cluster (the cluster keeps running)."""
        if self._closed:
            return
        self._closed = True
        try:
            _, frames = self._query_frames("close", {})
            self._send_frames(frames)
        except zmq.ZMQError:
            pass
        self._io.closing.set()
        self._io.join(timeout=2)
        self._req.close(linger=linger if linger is not None else 200)
        self._ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<par.Client cluster={self._info.cluster_id!r} engines={self.ids}>"


from .view import BroadcastView, DirectView, LoadBalancedView  # noqa: E402  (need Client)

__all__ = [
    "AsyncMapResult",
    "AsyncResult",
    "BroadcastView",
    "Client",
    "DirectView",
    "LoadBalancedView",
]
