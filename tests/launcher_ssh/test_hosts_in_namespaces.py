"""Engines on two "hosts" (network namespaces with their own sshd) join one cluster."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import par
from par import paths

from ..conftest import par_cli
from .conftest import BRIDGE_IP, Sshd, wait_gone


def _net_namespace() -> str:
    return os.readlink("/proc/self/ns/net")


def _cli_options(options: dict[str, Any]) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]


def test_par_start_and_stop_engines_on_two_hosts(
    netns_hosts: list[Sshd], ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    a, b = netns_hosts
    cid = "ssh-two-hosts"
    start = par_cli(
        "start",
        "--launcher",
        "ssh",
        "--cluster-id",
        cid,
        "--daemonize",
        f"--hosts=root@{a.address}:2,{b.address}:1",
        *_cli_options(ssh_options),
    )
    done = subprocess.run(start, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"listens on {BRIDGE_IP}" in done.stderr
    try:
        rc = par.Client(cluster_id=cid)
        rc.wait_for_engines(3, timeout=30)
        namespaces = rc[:].apply_sync(_net_namespace)
        assert len(set(namespaces)) == 2 and _net_namespace() not in namespaces
        assert {e["info"]["host"] for e in rc.engines().values()} == {a.address, b.address}
        assert sum(rc.load_balanced_view().map_sync(abs, range(-20, 0))) == 210
        rc.close()
        state = json.loads(paths.cluster_file(cid).read_text())
        placed = next(iter(state["engines"].values()))["state"]["placements"]
        # one fork server per host, the parent of that host's engines
        servers = [[q for q in p["procs"] if q.get("server")] for p in placed]
        assert [len(p["procs"]) - 1 for p in placed] == [2, 1] and all(len(s) == 1 for s in servers)
    finally:
        stop = subprocess.run(
            par_cli("stop", "--cluster-id", cid), capture_output=True, text=True, timeout=60
        )
    assert stop.returncode == 0, stop.stderr
    assert wait_gone(tmp_path) == []
    assert not any((tmp_path / "remote" / cid).glob("connection.json"))


def test_controller_on_one_host_engines_on_another(
    netns_hosts: list[Sshd], ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    a, b = netns_hosts
    cluster = par.Cluster(
        engines="ssh",
        controller="ssh",
        controller_host=f"root@{a.address}",
        hosts=f"{b.address}:2",
        **ssh_options,
    )
    with cluster as rc:
        assert json.loads(cluster.context.connection_file.read_text())["engine_url"].startswith(
            f"tcp://{a.address}:"
        )
        assert rc[:].apply_sync(lambda: 6 * 7) == [42, 42]
        # the controller, the fork server and its two engines
        assert len(wait_gone(tmp_path, timeout=0)) == 4
    assert wait_gone(tmp_path) == []
