"""Testing launchers: fixtures and a conformance suite for plugin authors.

In a launcher package's tests::

    from par.testing import LauncherConformance

    class TestMyLauncher(LauncherConformance):
        launcher = "mine"                 # the launcher's PLUGIN_NAME
        options = {"queue": "debug"}      # options to start it with

pytest then runs every conformance check against real processes: the
launcher starts and registers n engines, runs them in the cluster's work dir,
stops cleanly (with every process
their tasks started, even from an engine killed with SIGKILL), survives a
killed engine, restores from its cluster file in another process, and
delivers signals. Override the ``launcher_options`` fixture when options come from other
fixtures (a server's port, keys). The ``par_cluster`` fixture starts a cluster with any launcher and
always stops it. Enable the fixtures with ``pytest_plugins = ["par.testing"]``
in a ``conftest.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import psutil
import pytest

from .client.client import Client
from .cluster import Cluster
from .errors import EngineError, RemoteError

ClusterFactory = Callable[..., tuple[Cluster, Client]]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """Wait for processes to exit; return those still alive after ``timeout``."""
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    return alive


def start_lingering_processes() -> list[int]:
    """Run as a task: start three processes that outlive it (a child, a child in a session
    of its own, and a daemon whose parent has exited) and return their pids."""
    import subprocess

    sleep = ["sleep", "600"]
    child = subprocess.Popen(sleep)
    session = subprocess.Popen(sleep, start_new_session=True)
    read, write = os.pipe()
    parent = os.fork()
    if parent == 0:  # the daemon's parent starts it, says its pid, and leaves
        daemon = subprocess.Popen(sleep, start_new_session=True)
        os.write(write, str(daemon.pid).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(parent, 0)
    with os.fdopen(read) as f:
        daemon_pid = int(f.read())
    return [child.pid, session.pid, daemon_pid]


def engine_pids(client: Client) -> dict[int, int]:
    """Engine id -> process id, as the engines reported at registration."""
    return {eid: int(info["pid"]) for eid, info in client.engines().items()}


@pytest.fixture
def par_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private ``PAR_HOME`` for one test, so cluster files never touch the user's."""
    home = str(tmp_path_factory.mktemp("par_home"))
    monkeypatch.setenv("PAR_HOME", home)
    return home


@pytest.fixture
def par_cluster(par_home: str) -> Iterator[ClusterFactory]:
    """Start clusters with ``par_cluster(n, engines=NAME, **options)``; all are stopped after."""
    started: list[Cluster] = []

    def start(n: int = 2, **kwargs: Any) -> tuple[Cluster, Client]:
        cluster = Cluster(n=n, **kwargs)
        started.append(cluster)
        return cluster, cluster.start_and_connect_sync()

    yield start
    for cluster in started:
        cluster.stop_cluster_sync()


class LauncherConformance:
    """Checks every engine launcher must pass; subclass it and set ``launcher``."""

    launcher: ClassVar[str] = ""
    controller: ClassVar[str] = "local"
    options: ClassVar[dict[str, Any]] = {}
    n: ClassVar[int] = 2
    startup_timeout: ClassVar[float] = 60.0
    #: True when the engines of a set live or die together (the ranks of one MPI job):
    #: a killed engine must then fail every engine's task cleanly instead of sparing the rest.
    engines_share_fate: ClassVar[bool] = False
    #: False when the launcher leaves it to its scheduler to end what the tasks of an engine
    #: killed with SIGKILL started (Slurm does, with its proctrack/cgroup plugin).
    sweeps_after_killed_engines: ClassVar[bool] = True

    @pytest.fixture
    def launcher_options(self) -> dict[str, Any]:
        """Options to start the launcher with; override this fixture when they need fixtures."""
        return dict(self.options)

    @pytest.fixture
    def started(
        self, par_cluster: ClusterFactory, launcher_options: dict[str, Any]
    ) -> tuple[Cluster, Client]:
        """A cluster whose engines come from the launcher under test."""
        return self._start(par_cluster, launcher_options)

    def _start(
        self, par_cluster: ClusterFactory, launcher_options: dict[str, Any], **more: Any
    ) -> tuple[Cluster, Client]:
        if not self.launcher:
            pytest.fail("set `launcher` to the PLUGIN_NAME of the launcher under test")
        return par_cluster(
            self.n,
            engines=self.launcher,
            controller=self.controller,
            engine_timeout=self.startup_timeout,
            **launcher_options,
            **more,
        )

    def test_starts_and_registers_n_engines(self, started: tuple[Cluster, Client]) -> None:
        """The launcher starts n engines that register and run work."""
        _, rc = started
        assert len(rc.ids) == self.n
        pids = rc[:].apply_sync(os.getpid)
        assert len(set(pids)) == self.n

    def test_engines_run_in_the_work_dir(
        self,
        par_cluster: ClusterFactory,
        launcher_options: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        """The engines run their tasks in the cluster's work dir (it reaches them in their
        command), and the launcher rebuilt from the cluster file still has it."""
        work = os.path.realpath(tmp_path_factory.mktemp("work_dir"))
        cluster, rc = self._start(par_cluster, launcher_options, work_dir=work)
        assert rc[:].apply_sync(os.getcwd) == [work] * self.n
        (rebuilt,) = Cluster.from_file(cluster.cluster_id).engines.values()
        assert rebuilt.work_dir == work, "from_dict() lost the work dir"

    def test_stops_cleanly(self, started: tuple[Cluster, Client]) -> None:
        """Stopping leaves no engine process, nor any their tasks started, and the launcher
        reports not running."""
        cluster, rc = started
        pids = list(engine_pids(rc).values())
        started_by_tasks = [p for ps in rc[:].apply_sync(start_lingering_processes) for p in ps]
        sets = list(cluster.engines.values())
        cluster.stop_engines_sync()
        assert wait_gone(pids) == [], "engine processes survived stop()"
        assert wait_gone(started_by_tasks) == [], "processes tasks started survived stop()"
        assert not any(es.running() for es in sets)

    def test_survives_a_killed_engine(self, started: tuple[Cluster, Client]) -> None:
        """A killed engine fails its task with EngineError; the rest work and stop cleanly."""
        cluster, rc = started
        pids = engine_pids(rc)
        victim = max(pids)
        others = [e for e in rc.ids if e != victim]
        ar = rc[victim].apply_async(time.sleep, 120)
        held = rc[others].apply_async(time.sleep, 120) if self.engines_share_fate else None
        time.sleep(0.3)
        os.kill(pids[victim], signal.SIGKILL)
        with pytest.raises(EngineError):
            ar.get(timeout=30)
        if held is not None:
            outcomes = held.get(timeout=60, return_exceptions=True)
            assert all(isinstance(o, EngineError) for o in outcomes)
        else:
            survivors = [e for e in rc.ids if e != victim]
            assert survivors, "the other engines died with the killed one"
            assert rc[survivors].apply_sync(lambda: "ok") == ["ok"] * len(survivors)
        cluster.stop_engines_sync()
        assert wait_gone(list(pids.values())) == []

    def test_restores_from_the_cluster_file_in_another_process(
        self, started: tuple[Cluster, Client]
    ) -> None:
        """`par stop` in another process restores the launcher and stops everything."""
        cluster, rc = started
        pids = list(engine_pids(rc).values())
        started_by_tasks = [p for ps in rc[:].apply_sync(start_lingering_processes) for p in ps]
        self._par_stop(cluster)
        assert wait_gone(pids) == [], "engines survived `par stop` from another process"
        assert wait_gone(started_by_tasks) == [], "processes tasks started survived `par stop`"

    def test_par_stop_ends_what_the_task_of_a_killed_engine_started(
        self, started: tuple[Cluster, Client]
    ) -> None:
        """An engine killed with SIGKILL cannot end what its task started: `par stop` does."""
        if not self.sweeps_after_killed_engines:
            pytest.skip(f"the {self.launcher} launcher leaves this to its scheduler")
        cluster, rc = started
        pids = engine_pids(rc)
        victim = max(pids)
        started_by_task = rc[victim].apply_sync(start_lingering_processes)
        os.kill(pids[victim], signal.SIGKILL)
        assert wait_gone([pids[victim]]) == []
        self._par_stop(cluster)
        assert wait_gone(started_by_task) == [], "processes a killed engine's task started survived"
        assert wait_gone(list(pids.values())) == []

    @staticmethod
    def _par_stop(cluster: Cluster) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "par", "stop", "--cluster-id", cluster.cluster_id],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr

    def test_delivers_signals(self, started: tuple[Cluster, Client]) -> None:
        """signal_engines(SIGINT) interrupts running tasks without killing engines."""
        cluster, rc = started
        ar = rc[:].apply_async(time.sleep, 60)
        time.sleep(0.5)
        cluster.signal_engines_sync(signal.SIGINT)
        results = ar.get(timeout=30, return_exceptions=True)
        assert all(isinstance(r, RemoteError) and r.ename == "KeyboardInterrupt" for r in results)
        assert rc[:].apply_sync(lambda: 1) == [1] * self.n
