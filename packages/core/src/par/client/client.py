"""The Client: a connection to one cluster's controller.

Requests leave through two request connections shared by the user's threads
(under a lock): direct requests to the controller's direct device (most of
them: see :mod:`par.client.paths`), the rest to the controller itself.
Everything coming back arrives on a separate reply connection (to both), read
by the I/O thread or by a thread waiting on a result (:mod:`par.client.io`).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import operator
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from .. import connection, messages, protocol, serialize
from ..errors import ClusterError, NoEnginesRegistered, ParError
from ..protocol import Session
from . import taskrecords
from .asyncresult import AsyncHubResult, AsyncMapResult, AsyncResult, Metadata, new_metadata
from .history import HISTORY_LIMIT, BoundedDict, Results
from .io import IOThread
from .outbox import RequestSender
from .paths import FANOUT_BYTES, Paths, largest, nbytes

if TYPE_CHECKING:
    from .view import View

TASK_BATCH = 128  # load-balanced tasks per message from a map
SPIN_WAIT = 0.001  # seconds a thread waiting on a result polls before it sleeps


class Client:
    """A connection to a running cluster.

    ``Client()`` connects to the default cluster, ``Client(cluster_id="big")``
    to a named one, ``Client("path/to/connection.json")`` to the cluster a
    connection file describes. If the controller is silent for
    ``controller_timeout`` seconds, outstanding results fail with
    ``ControllerLost`` instead of waiting forever; the client reconnects by
    itself when a restored controller comes back.

    A thread waiting on a result polls for ``spin_wait`` seconds before it
    sleeps: a sleeping thread wakes late (by tens of microseconds on a virtual
    machine, a good part of a round trip), and many replies come within a
    millisecond. Each wait costs at most that much CPU time; 0 never polls.
    """

    def __init__(
        self,
        connection_info: str | Path | None = None,
        *,
        cluster_id: str | None = None,
        timeout: float = 10.0,
        cluster: Any = None,
        controller_timeout: float = 10.0,
        spin_wait: float = SPIN_WAIT,
    ) -> None:
        path = connection.resolve(connection_info, cluster_id)
        self._info = connection.load(path, timeout=timeout)
        self._connection_file = path
        self.cluster = cluster
        self.controller_timeout = controller_timeout
        self.spin_wait = spin_wait
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
        direct = self._ctx.socket(zmq.DEALER)  # direct requests, to the controller's device
        direct.setsockopt(zmq.LINGER, 1000)
        direct.setsockopt(zmq.SNDHWM, 0)
        self._info.secure(direct)
        direct.connect(self._info.direct_url)
        self._sender = RequestSender(self._req, direct, self.session)
        self._pending: dict[str, AsyncResult] = {}
        self._known: weakref.WeakValueDictionary[str, AsyncResult] = weakref.WeakValueDictionary()
        self._queries: dict[str, Future[tuple[dict[str, Any], list[Any]]]] = {}
        self._engines: dict[int, dict[str, Any]] = {}
        self._paths = Paths(self._engines)
        self._gone: dict[int, int] = {}  # lost engine id -> pid, to explain EngineErrors
        self._engines_changed = threading.Condition()
        self._arrivals = threading.Condition()  # notified as replies reach their results
        self.metadata: BoundedDict = BoundedDict(HISTORY_LIMIT)
        self._history: deque[str] = deque(maxlen=HISTORY_LIMIT)
        self.block = False
        self._closed = False
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []

        qid, first = self._query_frames("connect", {})
        fut = self._expect(qid)
        self._io = IOThread(self, first)
        self._io.start()
        self._pid = os.getpid()
        _open_clients.add(self)
        try:
            state, _ = self._wait_query(fut, timeout, "connect")
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

    def _expect(self, qid: str) -> Future[tuple[dict[str, Any], list[Any]]]:
        fut: Future[tuple[dict[str, Any], list[Any]]] = Future()
        self._queries[qid] = fut
        return fut

    def _wait_query(
        self, fut: Future[tuple[dict[str, Any], list[Any]]], timeout: float | None, op: str
    ) -> tuple[Any, list[Any]]:
        """The answer to a query: its data and its payload frames."""
        try:
            reply, payload = fut.result(timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the controller at {self._info.client_url} did not answer {op!r} within "
                f"{timeout} s; is the cluster running? (`par list`)"
            ) from None
        if not reply.get("ok"):
            raise ParError(f"{op} failed on the controller: {reply.get('err')}")
        return reply.get("d"), payload

    def _ask(self, op: str, timeout: float | None, args: dict[str, Any]) -> tuple[Any, list[Any]]:
        self._check_open()
        qid, frames = self._query_frames(op, args)
        fut = self._expect(qid)
        self._send_frames(frames)
        return self._wait_query(fut, timeout, op)

    def _query(self, op: str, timeout: float | None = 10.0, **args: Any) -> Any:
        return self._ask(op, timeout, args)[0]

    def _send_frames(self, frames: list[Any]) -> None:
        self._sender.send_built([frames])

    def _check_open(self) -> None:
        if self._closed:
            raise ParError("this client is closed")

    def _on_refused(self, why: str) -> None:
        """Fail the queries waiting (the connect's) with why the controller refused this
        client (from the I/O thread, which answers them)."""
        error = ClusterError(f"the controller at {self._info.client_url} {why}; {connection.FIX}")
        for fut in list(self._queries.values()):
            if not fut.done():
                fut.set_exception(error)

    def _on_query_reply(self, h: dict[str, Any], payload: list[Any]) -> None:
        fut = self._queries.pop(h.get("qid", ""), None)
        if fut is not None and not fut.done():
            fut.set_result((h, payload))

    def subscribe_events(
        self, callback: Callable[[str, dict[str, Any]], None], tasks: bool = False
    ) -> None:
        """Call ``callback(kind, data)`` for every cluster event (from the thread receiving:
        the I/O thread, or one waiting on a result).

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
                if isinstance(data.get("uuid"), str):  # a reply it was sending never ends
                    self._io.joiner.drop((bytes.fromhex(data["uuid"]),))
                self._gone[int(data["id"])] = int(data.get("pid", 0))
            self._engines_changed.notify_all()
        if kind == "controller_stopped":
            self._io.fail_all("EngineError", "the controller stopped")

    def metadata_for(self, msg_id: str) -> Metadata:
        """The metadata record of a message (created on first use)."""
        return self._metadata_of([msg_id])[0]

    def _metadata_of(self, msg_ids: list[str]) -> list[Metadata]:
        """The metadata records of messages, those not known yet created as submitted now."""
        known, out = self.metadata, []
        now: float | None = None
        for mid in msg_ids:
            md = known.get(mid)
            if md is None:
                now = time.time() if now is None else now
                md = new_metadata(mid, now)
                known.add(mid, md)
            out.append(md)
        known.trim()
        return out

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
        return ar

    def _sent(self, ar: AsyncResult, view: View | None = None) -> None:
        """Note a sent request in the histories (after the send: a reply needs none of it)."""
        for mid in ar.msg_ids:
            self._known[mid] = ar
        self._history.extend(ar.msg_ids)
        if view is not None:
            view._note(ar)

    def _unregister(self, ids: list[str]) -> None:
        """Forget ids registered for a request the controller refused."""
        gone = set(ids)
        for mid in ids:
            self._pending.pop(mid, None)
            self._paths.answered(mid)
            self._known.pop(mid, None)
            self.metadata.pop(mid, None)
        kept = [m for m in self._history if m not in gone]
        self._history.clear()
        self._history.extend(kept)

    def _send(
        self,
        header: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
        tracked: AsyncResult | None = None,
        via: list[bytes] | None = None,
    ) -> None:
        """Send a request to the controller, or (``via``: those engines' identities)
        through the direct device."""
        limit = self._info.max_message_bytes  # the device takes buffers in chunks
        if limit and max(largest(payload), 0 if via else largest(buffers)) > limit:
            self._unregister(header["ids"])
            raise ValueError(
                f"a frame of {max(largest(payload), largest(buffers))} bytes is more than the "
                f"controller takes ({limit}, `par controller --max-message-bytes`): push large "
                "data to the engines with a DirectView (it travels in chunks), or raise the limit"
            )
        header["c"] = self._ident
        header["ts"] = time.time()
        if tracked is None:
            in_flight = len(self._pending) > len(header["ids"])  # others than this request's
            self._sender.send((header, payload, buffers, via), in_flight)
            return
        # track=True: the result learns when ZeroMQ let go of the buffers
        messages = self._sender.build(header, payload, buffers, via)
        for tracker in self._sender.send_built(messages, via, track=True):
            tracked._add_tracker(tracker)

    def _direct(
        self,
        kind: str,
        targets: list[int],
        payload: list[Any],
        buffers: list[Any],
        make_ar: Callable[[list[str]], AsyncResult],
        extra: dict[str, Any] | None = None,
        track: bool = False,
        view: View | None = None,
    ) -> AsyncResult:
        """Send one request to several engines: through the direct device, once for each,
        or through the hub, which fans it out (see :mod:`par.client.paths`)."""
        ar = self._register(len(targets), make_ar)
        header = {"t": kind, "q": "d", "ids": ar.msg_ids, "tg": list(targets), **(extra or {})}
        limit = self._info.max_message_bytes
        hub = "co" in header or (  # coalesced: by the hub, as a large fan-out had better be
            len(targets) > 1
            and nbytes(payload) + nbytes(buffers) >= FANOUT_BYTES
            and not (limit and largest(buffers) > limit)  # the device takes it in chunks
        )
        parts = self._paths.book(ar.msg_ids, targets, hub)
        for via, ids, tg in parts:
            h = header if len(parts) == 1 else {**header, "ids": ids, "tg": tg}
            if via is not None:
                h.pop("co", None)  # the hub alone coalesces
            self._send(h, payload, buffers, ar if track else None, via)
        for mid, t in zip(ar.msg_ids, targets, strict=True):
            md = ar._metadata_of(mid)
            if md["engine_id"] is None:  # else the reply came already and set it
                md["engine_id"] = t
        self._sent(ar, view)
        return ar

    def _direct_each(
        self,
        f: Callable[..., Any],
        calls: Sequence[tuple[int, tuple[Any, ...], dict[str, Any]]],
        make_ar: Callable[[list[str]], AsyncResult],
        extra: dict[str, Any] | None = None,
        track: bool = False,
        view: View | None = None,
    ) -> AsyncResult:
        """Send ``f`` to several engines, each with its own (target, args, kwargs)."""
        fdata, digest = serialize.dumps_function(f)
        ar = self._register(len(calls), make_ar)
        for mid, (target, args, kwargs) in zip(ar.msg_ids, calls, strict=True):
            ar._metadata_of(mid)["engine_id"] = target
            header = {"t": "apply", "q": "d", "ids": [mid], "tg": [target], "f": digest}
            header.update(extra or {})
            ((via, _, _),) = self._paths.book([mid], [target], hub=False)
            self._send_call(header, fdata, args, kwargs, ar if track else None, via)
        self._sent(ar, view)
        return ar

    def _send_call(
        self,
        header: dict[str, Any],
        fdata: bytes,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        tracked: AsyncResult | None,
        via: list[bytes] | None = None,
    ) -> None:
        """Send one call of an already pickled function."""
        adata, bufs = serialize.dumps((args, kwargs))
        self._send(header, [fdata, adata], [b.raw() for b in bufs], tracked, via)

    def _tasks(
        self,
        f: Callable[..., Any],
        calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
        make_ar: Callable[[list[str]], AsyncResult],
        extra: dict[str, Any] | None = None,
        track: bool = False,
        view: View | None = None,
    ) -> AsyncResult:
        """Send load-balanced tasks of one function, one per (args, kwargs); one result for all.

        Up to ``TASK_BATCH`` tasks travel in one message (the function once, then each
        task's arguments): the controller still schedules each on its own.
        """
        fdata, digest = serialize.dumps_function(f)
        ar = self._register(len(calls), make_ar)
        for lo in range(0, len(calls), TASK_BATCH):
            header = {"t": "apply", "q": "t", "f": digest, **(extra or {})}
            tasks: list[messages.Task] = []
            for mid, (args, kwargs) in zip(
                ar.msg_ids[lo : lo + TASK_BATCH], calls[lo : lo + TASK_BATCH], strict=True
            ):
                adata, bufs = serialize.dumps((args, kwargs))
                tasks.append((mid, [fdata, adata], [b.raw() for b in bufs]))
            payload, buffers = messages.join_tasks(header, tasks)
            self._send(header, payload, buffers, ar if track else None)
        self._sent(ar, view)
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
        if type(targets) is int and targets >= 0 and targets in self._engines:
            return [targets]  # the common case, without sorting every engine's id
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
        try:
            out = [operator.index(t) for t in targets]
        except TypeError:
            hint = f"; for a variable on the engines use rc[:][{targets!r}]"
            hint = hint if isinstance(targets, str) else ""
            raise TypeError(
                f"engines are named by integer ids (one, a slice or a list), not {targets!r}{hint}"
            ) from None
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
        resent = self._query("resend", ids=ids)
        if resent["unknown"]:  # finished, but its result is not kept: nothing will come
            for mid in ids:
                self._pending.pop(mid, None)
            raise KeyError(
                f"no result of message(s) {', '.join(resent['unknown'])} on the controller: "
                "not kept (larger than its --max-record-bytes, or lost with a controller "
                "that crashed before writing it)"
            )
        return ar.get() if block else ar

    def resubmit(
        self,
        indices_or_msg_ids: Any = None,
        metadata: dict[str, Any] | None = None,
        block: bool | None = None,
    ) -> Any:
        """Run finished (or failed) tasks again, from the requests the controller kept.

        Tasks are named by message id, index into ``history`` (default: the last) or
        AsyncResult. Each runs under a new message id: a load-balanced task goes through
        the task scheduler again, a direct one to the engine it ran on. The original's
        record then has ``resubmitted``: the new id. Returns an :class:`AsyncHubResult`
        over the new tasks (their values with ``block=True``). ``metadata`` is accepted
        for ipyparallel code and, as there, unused.

        Raises ParError, running nothing, if a task is unknown to the controller, still
        pending, kept without its request, or a direct one whose engine is gone.
        """
        ids = self._msg_ids(indices_or_msg_ids if indices_or_msg_ids is not None else -1)
        if not ids:
            raise ValueError("resubmit needs at least one task")
        ar = self._register(len(ids), lambda new: AsyncHubResult(self, new, fname="resubmit"))
        try:
            self._query("resubmit", ids=ids, new=ar.msg_ids)
        except BaseException:
            self._unregister(ar.msg_ids)
            raise
        self._sent(ar)
        return ar.get() if (self.block if block is None else block) else ar

    def _register_existing(
        self, ids: list[str], make_ar: Callable[[list[str]], AsyncResult]
    ) -> AsyncResult:
        ar = make_ar(ids)
        for mid in ids:
            self._pending[mid] = ar
        return ar

    def _msg_ids(self, jobs: Any) -> list[str]:
        if isinstance(jobs, int):
            return [self._history[jobs]]
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

    def spin(self) -> None:
        """Wait until every reply the controller has sent so far has been taken in.

        A background thread takes replies in as they arrive, so this is never needed to
        make progress (ipyparallel needs it); it is one round trip to the controller.
        """
        self._query("ping")

    def result_status(self, msg_ids: Any, status_only: bool = True) -> dict[str, Any]:
        """Which of the given tasks are pending and which completed (and their records)."""
        status = self._query("result_status", ids=self._msg_ids(msg_ids))
        if status_only:
            return {k: status[k] for k in ("pending", "completed", "unknown")}
        return dict(status)

    def purge_local_results(self, jobs: Any = (), targets: Any = ()) -> None:
        """Forget results and metadata held here: of ``jobs`` (message ids, indices,
        AsyncResults, or 'all'), and of the tasks that ran on ``targets``.

        Results the controller still keeps can be fetched again with :meth:`get_result`.
        Raises RuntimeError if any of them is still outstanding.
        """
        if _nothing(jobs) and _nothing(targets):
            raise ValueError("purge_local_results needs jobs, targets, or 'all'")
        if jobs == "all":
            ids = set(self.metadata) | set(self._known)
        else:
            ids = set(() if _nothing(jobs) else self._msg_ids(jobs))
            if not _nothing(targets):
                engines = set(self._build_targets(targets))
                ids.update(m for m, md in list(self.metadata.items()) if md["engine_id"] in engines)
        running = ids & set(self._pending)
        if running:
            raise RuntimeError(
                f"cannot purge {len(running)} outstanding task(s), e.g. {min(running)}; "
                "wait for them (or abort them) first"
            )
        for mid in ids:
            self.metadata.pop(mid, None)
            self._known.pop(mid, None)

    def purge_hub_results(self, jobs: Any = (), targets: Any = ()) -> int:
        """Forget finished tasks' records on the controller: of ``jobs`` (message ids,
        indices, AsyncResults, or 'all') and of the tasks that ran on ``targets``.

        Returns how many records the controller dropped. Raises ParError if one of
        ``jobs`` is still pending.
        """
        if _nothing(jobs) and _nothing(targets):
            raise ValueError("purge_hub_results needs jobs, targets, or 'all'")
        if jobs == "all" or targets == "all":
            return int(self._query("purge"))
        ids = None if _nothing(jobs) else self._msg_ids(jobs)
        running = [mid for mid in ids or () if mid in self._pending]
        if running:  # known here at once; the controller may not have the request yet
            raise ParError(f"task {running[0]} is still pending; wait for it before purging it")
        tg = None if _nothing(targets) else self._build_targets(targets)
        return int(self._query("purge", ids=ids, targets=tg))

    def purge_results(self, jobs: Any = (), targets: Any = ()) -> int:
        """Forget finished tasks here and on the controller (``purge_local_results`` then
        ``purge_hub_results``); returns how many records the controller dropped."""
        self.purge_local_results(jobs, targets)
        return self.purge_hub_results(jobs, targets)

    def purge_everything(self) -> None:
        """Forget every finished task, here and on the controller, and clear ``history``."""
        self.purge_results("all")
        self._history.clear()

    def hub_history(self) -> list[str]:
        """Message ids of every task the controller still has a record of, oldest first."""
        return list(self._query("history"))

    def db_query(
        self, query: dict[str, Any], keys: str | list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Task records matching a Mongo-style query ($in $nin $eq $ne $gt $gte $lt $lte $glob).

        Keys, as ipyparallel's TaskRecord: msg_id, header, content, buffers, submitted,
        client_uuid, engine_uuid, started, completed, resubmitted, result_header,
        result_content, result_buffers, queue ('mux' or 'task'), execute_input,
        execute_result, error, stdout, stderr, label; and par's: engine_id, status, ename,
        method, client. ``keys`` picks some (msg_id is always there); by default all but
        ``buffers`` and ``result_buffers`` (the request's and the result's frames, as
        bytes). Times are datetimes, and a query may compare them with datetimes.
        """
        if not isinstance(query, dict):
            raise TypeError(f"db_query needs a dict query, not {type(query).__name__}")
        wanted = [keys] if isinstance(keys, str) else keys
        _, payload = self._ask(
            "db_query", 10.0, {"query": taskrecords.plain_query(query), "keys": wanted}
        )
        return taskrecords.records_of(payload)

    # ---- waiting and control -----------------------------------------------------------------

    @property
    def history(self) -> list[str]:
        """Message ids this client sent, oldest first (the latest 10,000)."""
        return list(self._history)

    @property
    def outstanding(self) -> set[str]:
        """Message ids still waiting for a reply."""
        return set(self._pending)

    def wait(self, jobs: Any = None, timeout: float = -1) -> bool:
        """Wait for results (all outstanding by default; or AsyncResults, message ids and
        indices into ``history``); True if all are done in time."""
        if jobs is None:
            targets: list[Any] = list({id(a): a for a in self._pending.values()}.values())
        elif isinstance(jobs, AsyncResult | str | int):
            targets = [jobs]
        else:
            targets = list(jobs)
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        for job in targets:
            if isinstance(job, int):
                job = self._history[job]
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
        """Disconnect from the cluster (the cluster keeps running).

        Requests not sent yet are sent first; a client still open when Python exits is
        closed then, so a script that submits tasks and exits loses none of them.
        """
        if self._closed:
            return
        self._closed = True
        _open_clients.discard(self)
        if self._io.accepted:  # else the connection may be dead: a send could wait forever
            try:
                _, frames = self._query_frames("close", {})
                self._send_frames(frames)
            except zmq.ZMQError:
                pass
        self._io.closing.set()
        self._io.join(timeout=2)
        for sock in (self._req, self._sender.direct):
            sock.close(linger=linger if linger is not None else 200)
        if self._io.is_alive():  # its socket is still open: term() would wait forever
            logging.getLogger("par.client").warning("the client's I/O thread did not stop")
            return
        self._ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<par.Client cluster={self._info.cluster_id!r} engines={self.ids}>"


_open_clients: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_open_clients() -> None:
    """At exit, close the clients still open: requests they hold go out first. A forked
    child leaves its parent's clients alone: their sockets and threads are not its own."""
    for client in list(_open_clients):
        if client._pid == os.getpid():
            client.close()


def _nothing(jobs: Any) -> bool:
    """True for "no jobs / no targets" (None or an empty collection; 0 is an index)."""
    return jobs is None or (isinstance(jobs, list | tuple | set | frozenset) and not jobs)


from .view import BroadcastView, DirectView, LoadBalancedView  # noqa: E402  (need Client)

__all__ = [
    "AsyncMapResult",
    "AsyncResult",
    "BroadcastView",
    "Client",
    "DirectView",
    "LoadBalancedView",
]
