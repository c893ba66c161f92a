"""Real OpenSSH servers for the ssh launcher's tests: one on loopback, two in network namespaces.

Every sshd uses a generated host key and accepts one generated user key.
The namespaces ``parhA``/``parhB`` hang off a bridge at 10.231.1.1 as hosts
10.231.1.2 and 10.231.1.3, so engines there reach the controller over a
real, non-loopback address (and cannot reach this machine's 127.0.0.1).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

SSHD = "/usr/sbin/sshd"
BRIDGE, BRIDGE_IP = "brparh", "10.231.1.1"
NAMESPACES = {"parhA": "10.231.1.2", "parhB": "10.231.1.3"}
UNROUTED_IP = "10.231.2.1"  # this machine's, on the bridge, but the namespaces have no route to it


@dataclass
class Keys:
    """The generated keys and files every test sshd and client share."""

    dir: Path
    host_pub: str
    user: Path
    wrong_user: Path
    known_hosts: Path
    ssh_config: Path


@dataclass
class Sshd:
    """A running test sshd."""

    address: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """A host key, an authorized user key, a wrong user key, and an empty SSH config."""
    if not os.access(SSHD, os.X_OK):
        pytest.skip("openssh-server is not installed (apt-get install openssh-server)")
    d = tmp_path_factory.mktemp("ssh")
    for name in ("host", "user", "wrong"):
        _keygen(d / name)
    shutil.copy(d / "user.pub", d / "authorized_keys")
    os.chmod(d / "authorized_keys", 0o600)
    (d / "ssh_config").write_text("")
    host_pub = " ".join((d / "host.pub").read_text().split()[:2])
    return Keys(d, host_pub, d / "user", d / "wrong", d / "known_hosts", d / "ssh_config")


def _sshd(
    keys: Keys, address: str, port: int, name: str, netns: str | None = None, sftp: bool = True
) -> Sshd:
    config = keys.dir / f"sshd_{name}.conf"
    config.write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {keys.dir / 'host'}\n"
        f"AuthorizedKeysFile {keys.dir / 'authorized_keys'}\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        f"StrictModes no\nPidFile {keys.dir / f'sshd_{name}.pid'}\n"
        + ("Subsystem sftp internal-sftp\n" if sftp else "")
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    log = keys.dir / f"sshd_{name}.log"
    prefix = ["ip", "netns", "exec", netns] if netns else []
    with open(log, "ab") as out:
        proc = subprocess.Popen([*prefix, SSHD, "-f", str(config), "-D", "-e"], stderr=out)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(
                    f"test sshd on {address}:{port} did not start: {log.read_text()}"
                )
            time.sleep(0.05)
    with open(keys.known_hosts, "a") as f:
        f.write(f"{address if port == 22 else f'[{address}]:{port}'} {keys.host_pub}\n")
    return Sshd(address, port, proc, log)


def _stop_sshd(sshd: Sshd) -> None:
    sshd.process.send_signal(signal.SIGTERM)
    try:
        sshd.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sshd.process.kill()
        sshd.process.wait()


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def loopback_sshd(keys: Keys) -> Iterator[Sshd]:
    """An sshd on 127.0.0.1 (a "remote" host that is this machine)."""
    sshd = _sshd(keys, "127.0.0.1", free_port(), "loopback")
    yield sshd
    _stop_sshd(sshd)


@pytest.fixture(scope="session")
def sshd_without_sftp(keys: Keys) -> Iterator[Sshd]:
    """An sshd on 127.0.0.1 configured without the SFTP subsystem (many minimal images)."""
    sshd = _sshd(keys, "127.0.0.1", free_port(), "nosftp", sftp=False)
    yield sshd
    _stop_sshd(sshd)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["ip", *args], check=check, capture_output=True)


def _remove_network() -> None:
    """Remove the namespaces and links, killing anything still running inside."""
    for ns in NAMESPACES:
        pids = _ip("netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        _ip("link", "del", f"v{ns}", check=False)
        _ip("netns", "del", ns, check=False)
    _ip("link", "del", BRIDGE, check=False)


@pytest.fixture(scope="session")
def netns_hosts(keys: Keys) -> Iterator[list[Sshd]]:
    """Two hosts in network namespaces on a bridge, each with sshd on port 22."""
    _remove_network()  # leftovers of an interrupted run
    try:
        _ip("netns", "add", next(iter(NAMESPACES)))
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        pytest.skip(f"network namespaces are not permitted here: {exc}")
    try:
        _ip("link", "add", BRIDGE, "type", "bridge")
        _ip("addr", "add", f"{BRIDGE_IP}/24", "dev", BRIDGE)
        _ip("addr", "add", f"{UNROUTED_IP}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        hosts = []
        for ns, address in NAMESPACES.items():
            _ip("netns", "add", ns, check=False)
            _ip("link", "add", f"v{ns}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", f"v{ns}", "master", BRIDGE, "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
            hosts.append(_sshd(keys, address, 22, ns, netns=ns))
    except BaseException:
        _remove_network()
        raise
    yield hosts
    for sshd in hosts:
        _stop_sshd(sshd)
    _remove_network()


@pytest.fixture
def ssh_options(keys: Keys, tmp_path: Path) -> dict[str, Any]:
    """Launcher options for the test hosts: key, known_hosts, this Python, a private remote dir."""
    return {
        "user": "root",
        "key_file": str(keys.user),
        "known_hosts": str(keys.known_hosts),
        "ssh_config": str(keys.ssh_config),
        "remote_python": sys.executable,
        "remote_dir": str(tmp_path / "remote"),
        "connect_timeout": 5.0,
    }


def processes_under(path: Path) -> list[psutil.Process]:
    """Live processes whose command line mentions ``path`` (the PID space is shared)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and str(path) in " ".join(
                proc.info["cmdline"] or []
            ):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def wait_gone(path: Path, timeout: float = 10.0) -> list[psutil.Process]:
    """Wait until no process mentions ``path``; return those left."""
    deadline = time.monotonic() + timeout
    while (left := processes_under(path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left
