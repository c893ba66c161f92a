"""The Client: a connection to one cluster's controller, and the user's way in.

A client is a handful of parts, each in its own module, that it wires
together and hands to one another; none reaches into another:

- the outbox (:mod:`~par.client.outbox`) sends requests on two request
  connections shared by the user's threads: direct requests to the
  controller's direct device (most of them: see :mod:`~par.client.paths`),
  the rest to the controller itself;
- the submitter (:mod:`~par.client.submit`) turns the views' calls into
  requests, and the queries (:mod:`~par.client.queries`) ask the controller
  about its engines and records;
- the ledger (:mod:`~par.client.ledger`) keeps the books: what is
  outstanding, the results and metadata, the engines;
- the I/O thread (:mod:`~par.client.io`) receives everything coming back on
  a separate reply connection, or a thread waiting on a result does.

The Client itself is the API users call (ipyparallel's): views, waiting,
and from its bases the control of the engines
(:class:`~par.client.control.EngineControl`) and the controller's task
records (:class:`~par.client.records.HubRecords`).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import logging
import os
import pprint
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import zmq

from .. import connection
from ..errors import ParError
from ..openfiles import room_hint
from ..paths import cluster_id_of
from ..protocol import Session
from .asyncresult import AsyncResult
from .balancedview import LoadBalancedView
from .control import EngineControl
from .dask import DaskScheduler, import_distributed, start_worker, stop_worker
from .directview import BroadcastView, DirectView
from .history import Results
from .io import IOThread, Listener
from .ledger import Ledger, not_engine_ids
from .outbox import RequestSender
from .paths import Paths
from .queries import Queries
from .records import HubRecords
from .replies import Metadata
from .submit import Submitter

SPIN_WAIT = 0.001  # seconds a thread waiting on a result polls before it sleeps


def _print_message(direction: str, header: dict[str, Any]) -> None:
    """How a client with ``debug`` on shows a message (as ipyparallel prints them)."""
    print(f"par.client {direction}: {pprint.pformat(header)}", file=sys.stderr, flush=True)


def _request_socket(ctx: zmq.Context, info: connection.ConnectionInfo, url: str) -> zmq.Socket:
    """A connection requests go out on (replies come back on the I/O thread's)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.SNDHWM, 0)
    info.secure(sock)
    sock.connect(url)
    return sock


class Client(EngineControl, HubRecords):
    """A connection to a running cluster.

    ``Client()`` connects to the default cluster, ``Client(cluster_id="big")``
    to a named one, ``Client("path/to/connection.json")`` to the cluster a
    connection file describes. If the controller is silent for
    ``controller_timeout`` seconds, outstanding results fail with
    ``ControllerLost`` instead of waiting forever; the client reconnects by
    itself when a restored controller comes back. As in ipyparallel, ``profile=`` names
    the cluster too (par has no profiles: a profile is a cluster id), ``context=``
    is a ZeroMQ context to make the client's sockets in (the client's own by default),
    and ``debug=True`` (or ``rc.debug = True`` later) prints every message the client
    sends and receives (its header) on stderr.

    A thread waiting on a result polls for ``spin_wait`` seconds before it
    sleeps: a sleeping thread wakes late (by tens of microseconds on a virtual
    machine, a good part of a round trip), and many replies come within a
    millisecond. Each wait costs at most that much CPU time; 0 never polls.

    ``ledger``, ``submitter``, ``queries`` and ``receiver`` (the I/O thread) are the
    client's parts (see above), for its views and results.
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
        profile: str | None = None,
        context: zmq.Context | None = None,
        debug: bool = False,
    ) -> None:
        path = connection.resolve(connection_info, cluster_id_of(cluster_id, profile))
        self._info = info = connection.load(path, timeout=timeout)
        self.cluster = cluster
        self.controller_timeout = controller_timeout
        self.session = Session(info.key_bytes)
        self.debug = debug
        self.block = False
        self._closed = False
        self._dask: DaskScheduler | None = None  # become_dask's scheduler, while it runs
        self._ident = uuid.uuid4().bytes
        self._own_ctx = context is None  # a context the caller gave stays theirs to end
        self._ctx = zmq.Context() if context is None else context
        self._req = _request_socket(self._ctx, info, info.client_url)
        direct = _request_socket(self._ctx, info, info.direct_url)  # to the direct device
        self._sender = RequestSender(self._req, direct, self.session)
        self.ledger = Ledger()
        self.metadata = self.ledger.metadata
        paths = Paths(self.ledger.engines)
        self.submitter = Submitter(
            self._sender, self.ledger, paths, self._ident, info.max_message_bytes, self._check_open
        )
        self.queries = Queries(
            self._sender, self.session, self._ident, info.client_url, self._check_open
        )
        self._listeners: list[Listener] = []

        qid, first = self.queries.frames("connect", {})
        answer = self.queries.expect(qid)
        self.receiver = IOThread(
            self._ctx,
            info,
            path,
            self._ident,
            first,
            session=self.session,
            ledger=self.ledger,
            sender=self._sender,
            paths=paths,
            queries=self.queries,
            listeners=self._listeners,
            explain_exit=self._describe_exit,
            controller_timeout=controller_timeout,
        )
        self.spin_wait = spin_wait
        self.receiver.start()
        self._pid = os.getpid()
        _open_clients.add(self)
        try:
            state, _ = self.queries.wait(answer, timeout, "connect")
        except BaseException:
            self.close()
            raise
        self.ledger.engines_are(state["engines"])
        self._activate_in_ipython()

    @property
    def connection_info(self) -> connection.ConnectionInfo:
        """Where the cluster's controller listens, as its connection file says."""
        return self._info

    @property
    def debug(self) -> bool:
        """Whether every message sent and received is printed on stderr (its header)."""
        return self.session.trace is not None

    @debug.setter
    def debug(self, on: bool) -> None:
        self.session.trace = _print_message if on else None

    @property
    def profile(self) -> str:
        """ipyparallel's profile of the client: in par the cluster id (par has no profiles)."""
        return self._info.cluster_id

    @property
    def spin_wait(self) -> float:
        """Seconds a thread waiting on a result polls before it sleeps (see above)."""
        return self.receiver.spin_wait

    @spin_wait.setter
    def spin_wait(self, seconds: float) -> None:
        self.receiver.spin_wait = seconds

    # ---- plumbing ----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ParError("this client is closed")

    def _activate_in_ipython(self) -> None:
        """Register ``%px`` for every engine when made inside IPython and no client has yet,
        as ipyparallel does (never importing IPython: a running shell has imported it)."""
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is not None and "px" not in shell.magics_manager.magics["line"]:
            self.activate()

    def _describe_exit(self, pid: int) -> str | None:
        """How an engine process ended, if this client's cluster knows."""
        return None if self.cluster is None else self.cluster.describe_engine_exit(pid)

    def subscribe_events(
        self, callback: Callable[[str, dict[str, Any]], None], tasks: bool = False
    ) -> None:
        """Call ``callback(kind, data)`` for every cluster event (from the thread receiving:
        the I/O thread, or one waiting on a result).

        Kinds: ``engine_registering``, ``engine_up``, ``engine_lost``, ``engine_stopped``,
        ``controller_stopped``; with ``tasks=True`` also ``activity``, as ``par monitor``
        uses: per engine and second, the work finished, with the errors and output (see
        :mod:`par.controller.feed`), what the controller kept first. Subscribing again with
        the same callback asks for what was kept again.
        """
        if callback not in self._listeners:
            self._listeners.append(callback)
        if tasks:
            self.queries.ask("monitor", on=True)

    def metadata_for(self, msg_id: str) -> Metadata:
        """The metadata record of a message (created on first use)."""
        return self.ledger.metadata_for(msg_id)

    # ---- engines and views -------------------------------------------------------------------

    @property
    def ids(self) -> list[int]:
        """Ids of the engines registered and ready, in order."""
        return self.ledger.ids

    def engines(self) -> dict[int, dict[str, Any]]:
        """What the controller reported about each registered engine."""
        with self.ledger.engines_changed:
            return dict(self.ledger.engines)

    def wait_for_engines(
        self, n: int | None = None, *, timeout: float = -1, block: bool = True
    ) -> Future[None] | None:
        """Wait until at least ``n`` engines are registered (all current ones if ``n`` is None).

        Raises TimeoutError after ``timeout`` seconds (negative: never), ParError at once if
        the client is or gets closed. ``block=False`` returns a Future of the wait instead.
        Warns at once if ``n`` is more than the controller's limit on open files holds (see
        :mod:`par.openfiles`): the wait may never end.
        """
        self._check_open()
        why = "" if n is None else room_hint(n, self._info.engine_room)
        if why:
            warnings.warn(
                f"waiting for {n} engines, more than the controller can take{why}", stacklevel=2
            )
        if block:
            self.ledger.wait_for_engines(n, timeout, self._check_open, why)
            return None
        future: Future[None] = Future()

        def wait() -> None:
            try:
                self.ledger.wait_for_engines(n, timeout, self._check_open, why)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

        if len(self) >= (n or 1):  # already there: no thread needed
            future.set_result(None)
        else:
            threading.Thread(target=wait, name="par-wait-for-engines", daemon=True).start()
        return future

    def __getitem__(self, key: int | slice | Sequence[int]) -> DirectView:
        if key is None or isinstance(key, str):  # views take these as "all": rc[...] not
            raise not_engine_ids(key)
        return self.direct_view(key)

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterable[DirectView]:
        return iter([self[i] for i in self.ids])

    def _engines_named(self, targets: Any) -> Any:
        """The engines ``targets`` names now, as a view keeps them: one id for an int
        (-1 is the last engine), the list of ids otherwise; 'all' stays 'all'."""
        if isinstance(targets, str) and targets == "all":
            return targets
        ids = self.ledger.targets(targets)
        return ids[0] if isinstance(targets, int) else ids

    def direct_view(self, targets: Any = "all", **flags: Any) -> DirectView:
        """A DirectView on ``targets`` ('all' follows engines as they come and go; other
        targets are the engines they name now)."""
        return DirectView(self, self._engines_named(targets), **flags)

    def load_balanced_view(self, targets: Any = None, **flags: Any) -> LoadBalancedView:
        """A LoadBalancedView: each task goes to a free engine (of ``targets``, if given and
        not 'all': the list of engines they name now)."""
        named = None if targets is None else self._engines_named(targets)
        allowed = None if named == "all" else [named] if isinstance(named, int) else named
        return LoadBalancedView(self, targets=allowed, **flags)

    def broadcast_view(
        self, targets: Any = "all", is_coalescing: bool = False, **flags: Any
    ) -> BroadcastView:
        """A BroadcastView: one client message reaches every target (replies coalesced if asked)."""
        named = self._engines_named(targets)
        return BroadcastView(self, named, is_coalescing=is_coalescing, **flags)

    def executor(self, targets: Any = None) -> Any:
        """A ``concurrent.futures.Executor`` over a load-balanced view of ``targets``."""
        return self.load_balanced_view(targets).executor

    def activate(self, targets: Any = "all", suffix: str = "") -> DirectView:
        """A DirectView on ``targets`` whose ``%px`` magics are registered in IPython."""
        view = self.direct_view(targets)
        view.activate(suffix)
        return view

    def become_dask(
        self,
        targets: Any = "all",
        port: int = 0,
        nanny: bool = False,
        scheduler_args: dict[str, Any] | None = None,
        **worker_args: Any,
    ) -> Any:
        """Make engines the workers of a dask.distributed cluster; return a
        ``distributed.Client`` of it.

        The scheduler runs in this client's process (ipyparallel's runs in its hub), on
        ``port`` (0: any), with ``scheduler_args``; each engine of ``targets`` runs a
        worker (one thread unless ``nthreads=`` says otherwise; in a separate process with
        ``nanny=True``) with ``worker_args``, named ``distributed_worker`` on the engine.
        Both stop with :meth:`stop_dask`, or when this client closes. Needs
        ``pip install 'par-core[dask]'`` here and on the engines.
        """
        distributed = import_distributed()
        view = self.direct_view(targets)
        if self._dask is None:
            self._dask = DaskScheduler(port, scheduler_args)
        worker_args.setdefault("nthreads", 1)  # an engine is one process running one task
        view.apply_sync(start_worker, self._dask.address, nanny, worker_args)
        return distributed.Client(self._dask.address)

    def stop_dask(self, targets: Any = "all") -> None:
        """Stop the dask workers :meth:`become_dask` started on ``targets``, and its scheduler."""
        self.direct_view(targets).apply_sync(stop_worker)
        self._stop_dask_scheduler()

    become_distributed = become_dask
    stop_distributed = stop_dask

    def _stop_dask_scheduler(self) -> None:
        scheduler, self._dask = self._dask, None
        if scheduler is not None:
            scheduler.close()

    # ---- waiting -----------------------------------------------------------------------------

    @property
    def results(self) -> Results:
        """Results of this client's finished tasks, by message id (bounded like ``metadata``)."""
        return Results(self.ledger)

    def spin(self) -> None:
        """Wait until every reply the controller has sent so far has been taken in.

        A background thread takes replies in as they arrive, so this is never needed to
        make progress (ipyparallel needs it); it is one round trip to the controller.
        """
        self.queries.ask("ping")

    @property
    def history(self) -> list[str]:
        """Message ids this client sent, oldest first (the latest 10,000)."""
        return list(self.ledger.history)

    @property
    def outstanding(self) -> set[str]:
        """Message ids still waiting for a reply."""
        return set(self.ledger.pending)

    def wait(self, jobs: Any = None, timeout: float = -1) -> bool:
        """Wait for results (all outstanding by default; or AsyncResults, message ids and
        indices into ``history``); True if all are done in time."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        for job in self.ledger.outstanding(jobs):
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            if isinstance(job, AsyncResult):
                if not job.wait(left):
                    return False
            elif concurrent.futures.wait([job], left).not_done:  # any other Future
                return False
        return True

    def wait_interactive(
        self, jobs: Any = None, interval: float = 1.0, timeout: float = -1
    ) -> None:
        """Wait as :meth:`wait` does, showing a progress bar (see
        ``AsyncResult.wait_interactive``); raises TimeoutError if ``timeout`` passes first."""
        results = [job for job in self.ledger.outstanding(jobs) if isinstance(job, AsyncResult)]
        if results:
            AsyncResult.join(*results).wait_interactive(interval, timeout)

    def monitor(self, interval: float = 1.0) -> Any:
        """Watch the cluster: in Jupyter a live panel (engines, throughput, errors, and the
        actions of ``par monitor`` as buttons), elsewhere the cluster's state now, as text.

        Needs par-tui (``pip install 'par-cluster[tui]'``) and, in Jupyter, ipywidgets.
        """
        try:
            from par_tui.notebook import monitor
        except ImportError as exc:
            raise ImportError(
                f"rc.monitor() needs the par-tui package ({exc}): "
                "pip install 'par-cluster[tui]' (and ipywidgets for Jupyter)"
            ) from exc
        return monitor(self, interval)

    def close(self, linger: int | None = None) -> None:
        """Disconnect from the cluster (the cluster keeps running).

        Requests not sent yet are sent first; a client still open when Python exits is
        closed then, so a script that submits tasks and exits loses none of them. Results
        still waiting for a reply fail with :class:`~par.errors.ClientClosed`.
        """
        self._close(linger, fail_waiting=True)

    def _close(self, linger: int | None, fail_waiting: bool) -> None:
        """:meth:`close`; without ``fail_waiting`` (at exit, when no thread is left to
        wait) results still waiting are left as they are, which saves failing them one
        by one (a second for a map of 100,000 tasks)."""
        if self._closed:
            return
        self._closed = True
        _open_clients.discard(self)
        self._stop_dask_scheduler()
        with self.ledger.engines_changed:  # a wait for engines ends at once
            self.ledger.engines_changed.notify_all()
        if self.receiver.accepted:  # else the connection may be dead: a send could wait forever
            try:
                self.queries.send("close", {})
            except zmq.ZMQError:
                pass
        self.receiver.stop()
        self.receiver.join(timeout=2)
        for sock in (self._req, self._sender.direct):
            sock.close(linger=linger if linger is not None else 200)
        if self.receiver.is_alive():  # its socket is still open: term() would wait forever
            logging.getLogger("par.client").warning("the client's I/O thread did not stop")
            return
        self.receiver.bell.close()
        if fail_waiting:  # no reply can reach this client now: a wait would be for ever
            self.receiver.fail_all(
                "ClientClosed",
                "the client was closed before the reply came; the task still runs on the "
                "cluster: another client's get_result(msg_id) fetches its result",
            )
        if self._own_ctx:
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
            client._close(None, fail_waiting=False)
