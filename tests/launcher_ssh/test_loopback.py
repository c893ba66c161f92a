"""Engines over SSH to an sshd on loopback: the simplest real setup."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import par
import psutil
import pytest
from par.launcher import LauncherError

from .conftest import Sshd, wait_gone


def test_engines_over_loopback_ssh_run_tasks(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    hosts = "127.0.0.1:2"
    with par.Cluster(engines="ssh", hosts=hosts, port=loopback_sshd.port, **ssh_options) as rc:
        assert len(rc.ids) == 2
        pids = rc[:].apply_sync(os.getpid)
        assert len(set(pids)) == 2
        assert rc.load_balanced_view().map_sync(lambda x: x * x, range(10)) == [
            x * x for x in range(10)
        ]
    assert wait_gone(tmp_path) == []


def test_a_hosts_engines_are_forked_from_one_server_there_that_preloaded_modules(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    options = {"hosts": "127.0.0.1:3", "port": loopback_sshd.port, **ssh_options}
    with par.Cluster(engines="ssh", preload="colorsys", **options) as rc:
        (es,) = rc.cluster.engines.values()
        ((server, *engines),) = [p.procs for p in es.remote.placements]
        assert server["server"] and len(engines) == 3
        pids = rc[:].apply_sync(os.getpid)
        assert sorted(pids) == sorted(e["pid"] for e in engines)
        assert {psutil.Process(pid).ppid() for pid in pids} == {server["pid"]}
        assert rc[:].apply_sync(lambda: "colorsys" in __import__("sys").modules) == [True] * 3
        rc.cluster.signal_engines_sync("SIGINT")  # for the engines: the server lives on
        time.sleep(0.5)
        assert psutil.Process(server["pid"]).status() != psutil.STATUS_ZOMBIE
        assert rc[:].apply_sync(os.getpid) == pids
    assert wait_gone(tmp_path) == []


def test_a_fork_server_that_fails_is_one_error_and_leaves_nothing(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    options = {"hosts": "127.0.0.1:2", "port": loopback_sshd.port, **ssh_options}
    cluster = par.Cluster(engines="ssh", preload="no_such_module_here", **options)
    with pytest.raises(LauncherError, match="cannot preload 'no_such_module_here'"):
        cluster.start_and_connect_sync()
    assert wait_gone(tmp_path) == []


def test_engines_run_in_the_work_dir_on_their_host_and_a_missing_one_is_their_error(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    """The work dir is the host's: the engines (not this machine) check that it exists."""
    work = tmp_path / "work"
    work.mkdir()
    options = {"hosts": "127.0.0.1:2", "port": loopback_sshd.port, **ssh_options}
    with par.Cluster(engines="ssh", work_dir=str(work), **options) as rc:
        assert rc[:].apply_sync(os.getcwd) == [str(work.resolve())] * 2
    cluster = par.Cluster(engines="ssh", work_dir=str(tmp_path / "gone"), **options)
    with pytest.raises(LauncherError, match=f"--work-dir {tmp_path / 'gone'}: No such file"):
        cluster.start_and_connect_sync()
    assert wait_gone(tmp_path) == []
