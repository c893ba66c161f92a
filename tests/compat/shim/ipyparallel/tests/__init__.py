"""The cluster ipyparallel's client tests run against, made of par processes.

ipyparallel's test package starts a controller with one bare ``ipengine`` for each
test module, and its ``clienttest`` base adds bare engines with ``add_engines``
until each test has the engines it wants. Here the same helpers start par: the
cluster with ``par start`` (cluster id ``iptest``, the profile the tests name,
heartbeats every 0.25 s as ipyparallel's ``--ping=250``) and each added engine as
a bare ``python -m par.engine --file CONNECTION`` process. ``launchers`` holds
those processes; ``clienttest`` polls and prunes it, ``teardown`` stops them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from par import Client
from par.paths import connection_file, par_home

PROFILE = "iptest"
START_TIMEOUT = 60.0  # the machine may be busy: ipyparallel's 15 s is too tight here

launchers: list[subprocess.Popen[bytes]] = []


def _par(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "par", *args], check=True, stdout=subprocess.DEVNULL)


def setup() -> None:
    """Start the test cluster: a controller and one engine."""
    _par(
        "start",
        "-n",
        "1",
        "--cluster-id",
        PROFILE,
        "--daemonize",
        "--controller-arg=--heartbeat=0.25",
        "--controller-arg=--heartbeat-timeout=3",
    )


def add_engines(n: int = 1, profile: str = PROFILE, total: bool = False) -> list[subprocess.Popen]:
    """Start ``n`` bare engines (only those missing to make ``n`` with ``total``)."""
    rc = Client(cluster_id=profile)
    base = len(rc)
    if total:
        n = max(n - base, 0)
    log_dir = par_home() / "bare-engines"
    log_dir.mkdir(exist_ok=True)
    eps = []
    for _ in range(n):
        with open(log_dir / f"engine-{time.monotonic_ns()}.log", "wb") as log:
            eps.append(
                subprocess.Popen(
                    [sys.executable, "-m", "par.engine", "--file", str(connection_file(profile))],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=os.environ,
                )
            )
    launchers.extend(eps)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while len(rc) < base + n:
            if any(ep.poll() is not None for ep in eps):
                raise RuntimeError("A test engine failed to start.")
            if time.monotonic() > deadline:
                raise RuntimeError("Timeout waiting for engines to connect.")
            time.sleep(0.1)
    finally:
        rc.close()
    return eps


def teardown() -> None:
    """Stop the bare engines, then the cluster."""
    while launchers:
        ep = launchers.pop()
        if ep.poll() is None:
            ep.terminate()
            try:
                ep.wait(5)
            except subprocess.TimeoutExpired:
                ep.kill()
                ep.wait()
    _par("stop", "--cluster-id", PROFILE)
