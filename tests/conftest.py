"""Shared fixtures: every test runs with its own PAR_HOME, and clusters are real processes.

par's own fixtures for launcher tests (``par_cluster``, a per-test ``par_home``)
come from :mod:`par.testing`, enabled below as a plugin author enables them.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cloudpickle
import par
import pytest
from par import paths

# tests/compat holds the shim and runner of ipyparallel's tests (`nox -s compat`), not tests
collect_ignore = ["compat"]

# A shell that starts the suite in the background without job control (`cmd &` in a
# script) hands it SIGINT ignored, and every process it starts inherits that: the tests
# of Ctrl-C (in this process and in a foreground `par start`) need it heard.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

pytest_plugins = ["par.testing"]


@pytest.fixture(autouse=True, scope="session")
def session_par_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep cluster files of the test run away from the user's own."""
    home = tmp_path_factory.mktemp("par_home")
    old = os.environ.get("PAR_HOME")
    os.environ["PAR_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("PAR_HOME", None)
    else:
        os.environ["PAR_HOME"] = old


@pytest.fixture(autouse=True)
def _send_test_functions_by_value(request: pytest.FixtureRequest) -> None:
    """Engines cannot import test modules: pickle their functions by value, as for ``__main__``."""
    module = request.module
    if module.__name__ not in _registered:
        cloudpickle.register_pickle_by_value(module)
        _registered.add(module.__name__)


_registered: set[str] = set()


@pytest.fixture(scope="module")
def cluster() -> Iterator[par.Cluster]:
    """A controller and 4 local engines, shared by the tests of one module."""
    c = par.Cluster(n=4)
    c.start_and_connect_sync()
    try:
        yield c
    finally:
        c.stop_cluster_sync()


@pytest.fixture(scope="module")
def rc(cluster: par.Cluster) -> Iterator[par.Client]:
    """A client of the module's cluster."""
    client = cluster.connect_client_sync()
    client.wait_for_engines(4, timeout=30)
    yield client
    client.close()


@pytest.fixture
def small_cluster() -> Iterator[tuple[par.Cluster, par.Client]]:
    """Two engines under a controller with fast heartbeats, for destructive tests."""
    c = par.Cluster(n=2, controller_args=["--heartbeat", "0.2", "--heartbeat-timeout", "1.5"])
    rc = c.start_and_connect_sync()
    try:
        yield c, rc
    finally:
        c.stop_cluster_sync()


def sleeps(pid: int, tid: int) -> int:
    """The times thread ``tid`` of process ``pid`` went to sleep (voluntary context
    switches): how often it woke, whatever the machine's speed."""
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt"))


def par_cli(*args: str) -> list[str]:
    """The command line running ``par`` with this interpreter."""
    return [sys.executable, "-m", "par", *args]


def wait_for_file(path: Path, timeout: float = 60) -> None:
    """Wait until a controller has written its connection file (``par engine`` given a
    missing one fails at once)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not written within {timeout} s"
        time.sleep(0.05)


def run_par(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``par ARGS`` as a user would, capturing its output."""
    return subprocess.run(par_cli(*args), capture_output=True, text=True, timeout=timeout)


def cluster_pids(cluster_id: str) -> list[int]:
    """The controller's and every engine's pid, as the cluster's file records them."""
    data = json.loads(paths.cluster_file(cluster_id).read_text())
    pids = [data["controller"]["state"]["process"]["pid"]]
    for es in data["engines"].values():
        pids += [p["pid"] for p in es["state"]["processes"]]
    return pids


class ByHand:
    """A cluster started by hand, as a user does on two terminals: ``par controller``, then
    ``par engine`` from the line the controller printed, each a command of its own."""

    def __init__(self, cluster_id: str, *controller_args: str) -> None:
        self.cluster_id = cluster_id
        self.controller = subprocess.Popen(
            par_cli("controller", "--cluster-id", cluster_id, *controller_args),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,  # unbuffered, so that select() sees every line still unread
        )
        self.engines: list[subprocess.Popen[bytes]] = []
        try:
            self.banner = self._read_banner()
        except BaseException:
            self.close()  # a controller that said nothing must not outlive the test
            raise

    def _read_banner(self, timeout: float = 60) -> str:
        """What the controller printed once up: up to its ``stop:`` line."""
        out = self.controller.stdout
        assert out is not None
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while not lines or not lines[-1].lstrip().startswith("stop:"):
            left = deadline - time.monotonic()
            assert left > 0 and select.select([out], [], [], left)[0], f"no banner: {lines}"
            line = out.readline()
            assert line, f"the controller exited: {lines}"
            lines.append(line.decode().rstrip("\n"))
        return "\n".join(lines)

    @property
    def engine_command(self) -> list[str]:
        """The ``par engine --file ...`` command the controller said to run."""
        line = next(x for x in self.banner.splitlines() if x.lstrip().startswith("engines:"))
        return line.split("engines:", 1)[1].split("   (")[0].split()

    def start_engine(self) -> subprocess.Popen[bytes]:
        """Run the printed engine command, as ``python -m par`` (this interpreter's par)."""
        name, *args = self.engine_command
        assert name == "par"
        proc = subprocess.Popen(
            par_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.engines.append(proc)
        return proc

    def close(self) -> None:
        """Stop what is left of it (engines a launcher added too) and remove its folder."""
        if paths.cluster_dir(self.cluster_id).exists():
            run_par("stop", "--cluster-id", self.cluster_id)
        for proc in [self.controller, *self.engines]:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if self.controller.stdout is not None:
            self.controller.stdout.close()
        shutil.rmtree(paths.cluster_dir(self.cluster_id), ignore_errors=True)


@contextmanager
def by_hand(cluster_id: str, engines: int, *controller_args: str) -> Iterator[ByHand]:
    """A controller and ``engines`` engines started by hand; all registered on entry."""
    cluster = ByHand(cluster_id, *controller_args)
    try:
        for _ in range(engines):
            cluster.start_engine()
        with par.Client(cluster_id=cluster_id) as rc:
            rc.wait_for_engines(engines, timeout=60)
        yield cluster
    finally:
        cluster.close()


def slowest_beats(rc: par.Client, seconds: float) -> dict[int, float]:
    """Each engine's longest heartbeat age the controller reported over ``seconds``."""
    ages: dict[int, float] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for e in rc.status()["engines"]:
            ages[e["id"]] = max(ages.get(e["id"], 0.0), e["heartbeat_age"])
        time.sleep(0.25)
    return ages
