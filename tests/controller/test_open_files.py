"""The controller and its open-file limit: each engine takes a file in each of its
processes, so it raises a low soft limit itself, and a wait for more engines than its
hard limit holds says so."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import par
import psutil
import pytest
from par import openfiles, paths
from par.sim import SimEngines

SOFT, HARD = resource.getrlimit(resource.RLIMIT_NOFILE)


@pytest.fixture
def low_soft_limit() -> Iterator[int]:
    """This process's soft limit at 256 (what its children start with), then back."""
    if HARD != resource.RLIM_INFINITY and HARD < 1024:
        pytest.skip(f"the hard limit on open files here ({HARD}) is below what the test needs")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, HARD))
    try:
        yield 256
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, HARD))


def test_a_controller_raises_a_low_soft_limit_and_takes_more_engines_than_it(
    low_soft_limit: int,
) -> None:
    """Left at a soft limit of 256, the controller stopped accepting engines near 256 (near
    1,000 under the common 1,024), and the rest waited for ever."""
    cluster = par.Cluster(n=0)
    cluster.start_controller_sync()
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, HARD))  # the swarm and client's own
    try:
        rc = cluster.connect_client_sync()
        hub = psutil.Process(int(rc.status()["pid"]))
        raised = openfiles.raise_limit()  # what the controller's processes got to
        for proc in (hub, *hub.children()):
            assert proc.rlimit(psutil.RLIMIT_NOFILE)[0] == raised > low_soft_limit
        assert rc.status()["engine_room"] == openfiles.engine_room(raised)
        n = low_soft_limit + 44
        with SimEngines(str(paths.connection_file(cluster.cluster_id)), n):
            rc.wait_for_engines(n, timeout=90)
            assert len(rc.ids) == n
        rc.close()
    finally:
        cluster.stop_cluster_sync()


def test_a_wait_for_more_engines_than_the_hard_limit_holds_says_why(tmp_path: Path) -> None:
    """A controller whose hard limit is 200 files, about 152 engines (48 kept for itself):
    of 200 engines some cannot connect; the wait warns at once that it may never end, its
    timeout says why and what to do, and so does the controller's log."""
    conn = tmp_path / "conn.json"
    log = tmp_path / "controller.log"
    with open(log, "w") as out:
        controller = subprocess.Popen(
            [sys.executable, "-m", "par.controller", "--cluster-id", "room", "--file", str(conn)],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200)),
        )
    try:
        deadline = time.monotonic() + 60
        while not conn.exists():
            assert controller.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        rc = par.Client(str(conn))
        assert rc.status()["engine_room"] == 152
        warned = pytest.warns(UserWarning, match="waiting for 200 engines, more than the")
        with SimEngines(str(conn), 200), warned, pytest.raises(TimeoutError) as caught:
            rc.wait_for_engines(200, timeout=15)
        message = str(caught.value)
        assert "of 200 engines registered within 15 s" in message
        assert "may open 200 files each" in message and "room for about 152" in message
        assert "ulimit -Hn" in message
        assert "152 engines: about as many as the limit on open files" in log.read_text()
        rc.close()
    finally:
        controller.terminate()
        controller.wait(30)


def test_a_start_of_more_engines_than_the_limit_holds_fails_at_once_saying_why(
    tmp_path: Path,
) -> None:
    """``Cluster.start_and_connect`` (``par start``) of 80 engines under a hard limit of 100
    open files (room for 52; the hub alone would need 107) fails before its engines'
    timeout, with the limit and what to raise, and stops what it started."""
    script = tmp_path / "start.py"
    script.write_text(
        "import resource, par\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))\n"
        "cluster = par.Cluster(n=80, cluster_id='room-start', engine_timeout=600)\n"
        "try:\n"
        "    cluster.start_and_connect_sync()\n"
        "except par.ClusterError as exc:\n"
        "    print(exc)\n"
        "print('running', cluster.engines_running())\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    ).stdout
    assert "80 engines are more than the controller can take" in out
    assert "room for about 52 engines" in out and "ulimit -Hn" in out
    assert "running 0" in out
