"""One adapter per system under test, all with the same small interface.

Each adapter starts a cluster of ``n`` engines (workers), runs no-op round
trips, floods of no-op tasks, a CPU-bound map, push / pull of an array and a
broadcast ``execute``, and names the processes it started so that their
memory can be read. Imports of the peers happen inside the adapters, so
``--peers par`` works where ipyparallel and dask are not installed.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil
from tasks import burn, getpid, noop

PEERS = ("par", "ipyparallel", "dask")


def process_tree(pid: int) -> list[int]:
    """A process and its descendants (pids)."""
    try:
        proc = psutil.Process(pid)
        return [pid, *(c.pid for c in proc.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def wait_gone(pids: list[int], timeout: float = 30.0) -> bool:
    """Wait until none of ``pids`` is alive (zombies count as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.01)
    return False


class Peer:
    """The interface every adapter implements."""

    name = ""
    version = ""
    registered_at = 0.0  # perf_counter() when start() saw every engine registered

    def start(self, n: int) -> None:
        """Start a controller and ``n`` engines; return once all answer a no-op."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop everything :meth:`start` started."""
        raise NotImplementedError

    def call(self, mode: str) -> None:
        """One no-op round trip, ``direct`` (to engine 0) or ``lb`` (load-balanced)."""
        raise NotImplementedError

    def map_noop(self, n: int, chunksize: int = 1) -> None:
        """``n`` load-balanced no-op tasks as one ``map``, ``chunksize`` a message; wait."""
        raise NotImplementedError

    def apply_loop_noop(self, n: int) -> None:
        """``n`` load-balanced no-op tasks submitted one by one; wait for all."""
        raise NotImplementedError

    def map_burn(self, n_iter: int, tasks: int) -> None:
        """A load-balanced map of ``burn(n_iter)`` over ``tasks`` tasks."""
        raise NotImplementedError

    def push(self, value: Any) -> None:
        """Put ``value`` as ``a`` on every engine; wait until all hold it."""
        raise NotImplementedError

    def pull(self) -> list[Any]:
        """Fetch ``a`` back from every engine."""
        raise NotImplementedError

    def execute_all(self, code: str) -> int:
        """Run ``code`` on every engine at once; return how many answered."""
        raise NotImplementedError

    def engine_pids(self) -> list[int]:
        """Process ids of the engines (the processes that run tasks)."""
        raise NotImplementedError

    def controller_pids(self) -> list[int]:
        """Process ids of the controller (scheduler) and its helpers."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every process of this cluster: controller, engines and their nannies, if any."""
        out = set(self.engine_pids())
        try:
            out.update(self.controller_pids())
        except RuntimeError:
            pass
        own = os.getpid()
        for pid in list(out):
            try:
                parent = psutil.Process(pid).ppid()
            except psutil.NoSuchProcess:
                continue
            if parent not in (own, 1):
                out.add(parent)
        return sorted(out)


class _ViewsPeer(Peer):
    """par and ipyparallel share one API; only their start and stop differ."""

    module: Any

    def start(self, n: int) -> None:
        self.cluster = self._cluster(n)
        self.rc = self.cluster.start_and_connect_sync()
        deadline = time.monotonic() + 120
        while len(self.rc.ids) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.rc.ids)} of {n} engines came up")
            time.sleep(0.01)
        self.registered_at = time.perf_counter()
        self.dv = self.rc[:]
        self.one = self.rc[self.rc.ids[0]]
        self.lv = self.rc.load_balanced_view()
        self._engine_pids = list(self.dv.apply_sync(getpid))

    def _cluster(self, n: int) -> Any:
        return self.module.Cluster(n=n)

    def stop(self) -> None:
        self.cluster.stop_cluster_sync()

    def call(self, mode: str) -> None:
        (self.one if mode == "direct" else self.lv).apply_sync(noop)

    def map_noop(self, n: int, chunksize: int = 1) -> None:
        self.lv.map_async(noop, range(n), chunksize=chunksize).get()

    def apply_loop_noop(self, n: int) -> None:
        ars = [self.lv.apply_async(noop, i) for i in range(n)]
        self.rc.wait(ars)

    def map_burn(self, n_iter: int, tasks: int) -> None:
        self.lv.map_async(burn, [n_iter] * tasks, chunksize=1).get()

    def push(self, value: Any) -> None:
        self.dv.push({"a": value}, block=True)

    def pull(self) -> list[Any]:
        return list(self.dv.pull("a", block=True))

    def execute_all(self, code: str) -> int:
        ar = self.dv.execute(code, block=False)
        ar.get(timeout=300)
        return len(self.rc.ids)

    def engine_pids(self) -> list[int]:
        return self._engine_pids


class ParPeer(_ViewsPeer):
    """par, through its ipyparallel-compatible API."""

    name = "par"

    def __init__(self, **cluster_options: Any) -> None:
        import par

        self.module = par
        self.version = par.__version__
        self.cluster_options = {"engine_timeout": 120.0, **cluster_options}

    def _cluster(self, n: int) -> Any:
        return self.module.Cluster(n=n, **self.cluster_options)

    def controller_pids(self) -> list[int]:
        return process_tree(int(self.rc.status()["pid"]))


class IpyparallelPeer(_ViewsPeer):
    """ipyparallel, default settings (leastload scheduler, default pickling)."""

    name = "ipyparallel"

    def __init__(self) -> None:
        import ipyparallel

        self.module = ipyparallel
        self.version = ipyparallel.__version__

    def _cluster(self, n: int) -> Any:
        return self.module.Cluster(n=n, log_level=40)

    def execute_all(self, code: str) -> int:
        bv = self.rc.broadcast_view()
        bv.execute(code, block=False).get(timeout=300)
        return len(self.rc.ids)

    def controller_pids(self) -> list[int]:
        return process_tree(self.cluster.controller.process.pid)


class DaskPeer(Peer):
    """dask.distributed with one single-threaded worker process per engine.

    ``direct`` pins a task to one worker; ``lb`` lets the scheduler choose.
    ``subprocess_scheduler`` runs the scheduler in its own process (used to
    read its memory); otherwise it lives in this process, as with LocalCluster.
    """

    name = "dask"

    def __init__(self, subprocess_scheduler: bool = False) -> None:
        import distributed

        self.distributed = distributed
        self.version = distributed.__version__
        self.subprocess_scheduler = subprocess_scheduler

    def start(self, n: int) -> None:
        d = self.distributed
        if self.subprocess_scheduler:
            from distributed.deploy.subprocess import SubprocessCluster

            self.cluster = SubprocessCluster(
                n_workers=n, threads_per_worker=1, dashboard_address=None
            )
        else:
            self.cluster = d.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
            )
        self.client = d.Client(self.cluster)
        self.client.wait_for_workers(n, timeout=120)
        pids = self.client.run(getpid)
        self.workers = list(pids)
        self._engine_pids = list(pids.values())

    def stop(self) -> None:
        self.client.close()
        self.cluster.close()

    def call(self, mode: str) -> None:
        workers = self.workers[:1] if mode == "direct" else None
        self.client.submit(noop, pure=False, workers=workers).result()

    def _wait(self, futures: list[Any]) -> None:
        self.distributed.wait(futures)
        bad = [f for f in futures if f.status != "finished"]
        if bad:
            bad[0].result()

    def map_noop(self, n: int, chunksize: int = 1) -> None:
        self._wait(self.client.map(noop, range(n), pure=False, batch_size=chunksize))

    def apply_loop_noop(self, n: int) -> None:
        self._wait([self.client.submit(noop, i, pure=False) for i in range(n)])

    def map_burn(self, n_iter: int, tasks: int) -> None:
        self._wait(self.client.map(burn, [n_iter] * tasks, pure=False))

    def push(self, value: Any) -> None:
        self.future = self.client.scatter(value, broadcast=True)
        self.distributed.wait(self.future)

    def pull(self) -> list[Any]:
        """One gather per worker holding the value: every copy comes back."""
        holders = self.client.who_has(self.future)[self.future.key]
        return [self.client.gather(self.future) for _ in holders]

    def execute_all(self, code: str) -> int:
        return len(self.client.run(exec, code))

    def engine_pids(self) -> list[int]:
        return self._engine_pids

    def controller_pids(self) -> list[int]:
        pid = int(self.client.run_on_scheduler(os.getpid))
        if pid == os.getpid():
            raise RuntimeError("the dask scheduler runs in this process")
        return [pid]


def make_peer(name: str, **options: Any) -> Peer:
    """The adapter of a peer by name."""
    if name == "par":
        return ParPeer(**options)
    if name == "ipyparallel":
        return IpyparallelPeer()
    if name == "dask":
        return DaskPeer(**options)
    raise ValueError(f"unknown peer {name!r}: choose from {', '.join(PEERS)}")
