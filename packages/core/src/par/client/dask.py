"""Engines as a dask.distributed cluster: ``Client.become_dask`` and ``stop_dask``.

ipyparallel starts the dask scheduler inside its hub. par keeps dask out of the
controller (it would take the controller's time and make every cluster depend
on ``distributed``): the scheduler runs in the process of the client that asks,
on an event loop thread of its own, until ``stop_dask`` or until that client
closes. Each chosen engine starts a ``distributed.Worker`` (or a ``Nanny``) on
an event loop thread of its own, named ``distributed_worker`` (and
``dask_worker``) in the engine's namespace, as in ipyparallel.

Needs ``distributed`` here and on the engines: ``pip install 'par-core[dask]'``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from ..engine import namespace

WORKER_NAMES = ("distributed_worker", "dask_worker")  # the worker, in an engine's namespace
TIMEOUT = 60.0  # seconds a scheduler or worker may take to start or stop


def import_distributed() -> Any:
    """The ``distributed`` package, or an ImportError saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"become_dask needs dask.distributed ({exc}): pip install 'par-core[dask]' "
            "where the client and the engines run"
        ) from None
    return distributed


class LoopThread:
    """An asyncio event loop running in a daemon thread, for dask's servers."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the loop and wait for its value."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT)

    def stop(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()


class DaskScheduler:
    """A ``distributed.Scheduler`` running in this process (see the module's docstring)."""

    def __init__(self, port: int = 0, scheduler_args: dict[str, Any] | None = None) -> None:
        distributed = import_distributed()
        args = {"port": port, **(scheduler_args or {})}
        self._thread = LoopThread("par-dask-scheduler")

        async def start() -> Any:
            return await distributed.Scheduler(**args)

        try:
            self.scheduler = self._thread.run(start())
        except BaseException:
            self._thread.stop()
            raise
        self.address: str = self.scheduler.address

    def close(self) -> None:
        """Stop the scheduler (its workers stop on their engines: ``stop_worker``)."""
        try:
            self._thread.run(self.scheduler.close())
        finally:
            self._thread.stop()


# ---- on the engines ----------------------------------------------------------------------

_running: list[tuple[LoopThread, Any]] = []  # this engine's worker, while it runs


def start_worker(address: str, nanny: bool, worker_args: dict[str, Any]) -> str:
    """Run on an engine: start a dask worker of the scheduler at ``address`` (stopping one
    started before), named in the engine's namespace; return the worker's address."""
    distributed = import_distributed()
    stop_worker()
    kind = distributed.Nanny if nanny else distributed.Worker
    thread = LoopThread("par-dask-worker")

    async def start() -> Any:
        return await kind(address, **worker_args)

    try:
        worker = thread.run(start())
    except BaseException:
        thread.stop()
        raise
    _running.append((thread, worker))
    for name in WORKER_NAMES:
        namespace.user_ns[name] = worker
    return str(worker.address)


def stop_worker() -> None:
    """Run on an engine: stop its dask worker, if it has one, and drop its names."""
    while _running:
        thread, worker = _running.pop()
        try:
            thread.run(worker.close())
        finally:
            thread.stop()
        for name in WORKER_NAMES:
            if namespace.user_ns.get(name) is worker:
                del namespace.user_ns[name]
