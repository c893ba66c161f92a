"""Each way an SSH start fails gives one clear error and leaves no process behind."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import par
import pytest
from par.errors import ClusterError
from par.launcher import LauncherError

from ..conftest import par_cli
from .conftest import UNROUTED_IP, Keys, Sshd, free_port, processes_under, wait_gone


def _fails(match: str, tmp_path: Path, **options: Any) -> str:
    """Start a cluster that must fail with ``match``; check nothing is left running."""
    cluster = par.Cluster(engines="ssh", controller="ssh", **options)
    with pytest.raises((LauncherError, ClusterError), match=match) as info:
        cluster.start_and_connect_sync()
    assert wait_gone(tmp_path) == []
    assert processes_under(Path(cluster.cluster_id)) == []
    return str(info.value)


def test_wrong_key(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], keys: Keys, tmp_path: Path
) -> None:
    ssh_options["key_file"] = str(keys.wrong_user)
    message = _fails(
        "authentication failed", tmp_path, hosts="127.0.0.1", port=loopback_sshd.port, **ssh_options
    )
    assert str(keys.wrong_user) in message and "authorized_keys" in message


def test_wrong_key_from_the_command_line(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], keys: Keys, tmp_path: Path
) -> None:
    ssh_options["key_file"] = str(keys.wrong_user)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in ssh_options.items()]
    done = subprocess.run(
        par_cli(
            "start",
            "--launcher",
            "ssh",
            "--cluster-id",
            "ssh-bad-key",
            "-n",
            "1",
            "--hosts=127.0.0.1",
            f"--port={loopback_sshd.port}",
            *flags,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "authentication failed for root@127.0.0.1" in error[0]
    assert wait_gone(tmp_path) == [] and processes_under(Path("ssh-bad-key")) == []


def test_dead_host(ssh_options: dict[str, Any], tmp_path: Path) -> None:
    message = _fails("unreachable", tmp_path, hosts="127.0.0.1", port=free_port(), **ssh_options)
    assert "refused" in message.lower()


def test_host_that_does_not_answer(
    netns_hosts: list[Sshd], ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    ssh_options["connect_timeout"] = 2.0
    _fails("10.231.1.9.* unreachable", tmp_path, hosts="10.231.1.9", **ssh_options)


def test_missing_remote_python(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    ssh_options["remote_python"] = "/opt/nowhere/bin/python3"
    message = _fails(
        "no Python at", tmp_path, hosts="127.0.0.1", port=loopback_sshd.port, **ssh_options
    )
    assert "--remote-python" in message


def test_remote_python_without_par(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    if not Path("/usr/bin/python3").exists():
        pytest.skip("no system Python to stand for a host without par")
    ssh_options["remote_python"] = "/usr/bin/python3"
    message = _fails(
        "par is not installed", tmp_path, hosts="127.0.0.1", port=loopback_sshd.port, **ssh_options
    )
    assert "pip install par-core" in message


def test_unknown_host_key_is_refused_then_accepted_on_request(
    loopback_sshd: Sshd, ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    known = tmp_path / "known_hosts"
    ssh_options["known_hosts"] = str(known)
    _fails(
        "not in .*--accept-new-hosts",
        tmp_path,
        hosts="127.0.0.1",
        port=loopback_sshd.port,
        **ssh_options,
    )
    cluster = par.Cluster(
        1,
        engines="ssh",
        hosts="127.0.0.1",
        port=loopback_sshd.port,
        accept_new_hosts=True,
        **ssh_options,
    )
    with cluster as rc:
        assert rc[:].apply_sync(lambda: "ok") == ["ok"]
    assert f"[127.0.0.1]:{loopback_sshd.port} ssh-ed25519 " in known.read_text()


def test_loopback_controller_is_refused_for_other_hosts(
    netns_hosts: list[Sshd], ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    cluster = par.Cluster(engines="ssh", hosts=netns_hosts[0].address, **ssh_options)
    with pytest.raises(
        LauncherError, match=r"listens on 127\.0\.0\.1 \(loopback\).*--ip 10\.231\.1\.1"
    ):
        cluster.start_and_connect_sync(1)
    assert wait_gone(tmp_path) == []


def test_engines_that_never_register_show_their_output_and_address(
    netns_hosts: list[Sshd], ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    # the controller listens on an address of this machine the engine's host has no route to
    message = _fails(
        "registered within",
        tmp_path,
        hosts=netns_hosts[0].address,
        ip=UNROUTED_IP,
        engine_timeout=6,
        n=1,
        **ssh_options,
    )
    assert f"connecting to tcp://{UNROUTED_IP}:" in message and "par.engine" in message


def test_host_without_sftp_is_one_line_naming_the_host_and_the_fix(
    sshd_without_sftp: Sshd, ssh_options: dict[str, Any], tmp_path: Path
) -> None:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in ssh_options.items()]
    done = subprocess.run(
        par_cli(
            "start",
            "--launcher",
            "ssh",
            "--cluster-id",
            "ssh-no-sftp",
            "-n",
            "1",
            "--hosts=127.0.0.1",
            f"--port={sshd_without_sftp.port}",
            *flags,
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"par start: error: root@127.0.0.1:{sshd_without_sftp.port} ")
    assert "Subsystem sftp" in error
    assert wait_gone(tmp_path) == [] and processes_under(Path("ssh-no-sftp")) == []
