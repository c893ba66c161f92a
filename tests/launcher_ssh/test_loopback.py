"""Engines over SSH to an sshd on loopback: the simplest real setup."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import par

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
