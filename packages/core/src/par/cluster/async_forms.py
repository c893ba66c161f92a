"""The ``async`` forms of :class:`~par.Cluster`'s methods, as in ipyparallel.

ipyparallel's Cluster is asynchronous first, with a ``*_sync`` twin of each method;
par's launchers block (they start processes and wait for files), so here the ``*_sync``
form is the real one and each ``async`` form runs it on a worker thread
(:func:`asyncio.to_thread`), leaving the caller's event loop free meanwhile. This
mixin holds nothing but those forms: :class:`~par.Cluster` inherits them.
"""

# Each form's ``self`` is typed as the Cluster it is mixed into, so that the calls are
# checked; mypy wants a self type to be a supertype of the class ("misc"), not a subclass.
# mypy: disable-error-code="misc"

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..client.client import Client
    from .cluster import Cluster, Stopped


class AsyncForms:
    """``await cluster.start_cluster()`` and the like: each a ``*_sync`` method on a thread."""

    async def start_controller(self: Cluster) -> None:
        """Async form of :meth:`start_controller_sync`."""
        await asyncio.to_thread(self.start_controller_sync)

    async def start_engines(
        self: Cluster,
        n: int | None = None,
        launcher: str | None = None,
        work_dir: str | None = None,
    ) -> str:
        """Async form of :meth:`start_engines_sync`."""
        return await asyncio.to_thread(self.start_engines_sync, n, launcher, work_dir)

    async def start_cluster(self: Cluster, n: int | None = None) -> None:
        """Async form of :meth:`start_cluster_sync`."""
        await asyncio.to_thread(self.start_cluster_sync, n)

    async def connect_client(self: Cluster) -> Client:
        """Async form of :meth:`connect_client_sync`."""
        return await asyncio.to_thread(self.connect_client_sync)

    async def start_and_connect(
        self: Cluster, n: int | None = None, activate: bool = False
    ) -> Client:
        """Async form of :meth:`start_and_connect_sync`."""
        return await asyncio.to_thread(self.start_and_connect_sync, n, None, activate)

    async def restore_controller(self: Cluster) -> None:
        """Async form of :meth:`restore_controller_sync`."""
        await asyncio.to_thread(self.restore_controller_sync)

    async def restore_and_connect(self: Cluster) -> Client:
        """Async form of :meth:`restore_and_connect_sync`."""
        return await asyncio.to_thread(self.restore_and_connect_sync)

    async def stop_engines(self: Cluster, engine_set_id: str | None = None) -> None:
        """Async form of :meth:`stop_engines_sync`."""
        await asyncio.to_thread(self.stop_engines_sync, engine_set_id)

    async def restart_engines(self: Cluster, engine_set_id: str | None = None) -> None:
        """Async form of :meth:`restart_engines_sync`."""
        await asyncio.to_thread(self.restart_engines_sync, engine_set_id)

    async def signal_engines(
        self: Cluster, sig: int | str, engine_set_id: str | None = None
    ) -> None:
        """Async form of :meth:`signal_engines_sync`."""
        await asyncio.to_thread(self.signal_engines_sync, sig, engine_set_id)

    async def stop_engine(self: Cluster, engine_id: int) -> None:
        """Async form of :meth:`stop_engine_sync`."""
        await asyncio.to_thread(self.stop_engine_sync, engine_id)

    async def restart_engine(self: Cluster, engine_id: int) -> str:
        """Async form of :meth:`restart_engine_sync`."""
        return await asyncio.to_thread(self.restart_engine_sync, engine_id)

    async def signal_engine(self: Cluster, sig: int | str, engine_id: int) -> None:
        """Async form of :meth:`signal_engine_sync`."""
        await asyncio.to_thread(self.signal_engine_sync, sig, engine_id)

    async def stop_controller(self: Cluster) -> None:
        """Async form of :meth:`stop_controller_sync`."""
        await asyncio.to_thread(self.stop_controller_sync)

    async def stop_cluster(self: Cluster) -> Stopped:
        """Async form of :meth:`stop_cluster_sync`."""
        return await asyncio.to_thread(self.stop_cluster_sync)

    async def __aenter__(self: Cluster) -> Client:
        return await self.start_and_connect()

    async def __aexit__(self: Cluster, *exc: object) -> None:
        await self.stop_cluster()
