"""One SSH session to one host (paramiko): connect with clear errors, run the agent, move files."""

from __future__ import annotations

import json
import posixpath
import shlex
import socket
import stat
from pathlib import Path
from typing import Any

import paramiko
from par.launcher import LauncherError

from .hosts import Endpoint, Host, resolve

AGENT_SOURCE = (Path(__file__).with_name("agent.py")).read_text()
_CHECK_SSHD = "is sshd running there, and the port right?"
NO_PYTHON_STATUS = 127  # what a POSIX shell exits with for "command not found"


class UnknownHostKey(paramiko.SSHException):
    """The host's key is not in known_hosts and accepting new keys was not asked for."""


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    """Refuse hosts whose key is not in known_hosts (OpenSSH's StrictHostKeyChecking=yes)."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise UnknownHostKey(hostname)


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Accept and save the key of a host never seen (OpenSSH's StrictHostKeyChecking=accept-new)."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = Path(known_hosts)

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.known_hosts, "a") as f:
            f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class Pool:
    """Open sessions of one launcher, one per host, made on first use."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        self.sessions: dict[str, Session] = {}

    def get(self, host: Host) -> Session:
        """The session to ``host``, connecting if needed."""
        if host.label not in self.sessions:
            timeout = float(self.options.get("connect_timeout") or 10.0)
            self.sessions[host.label] = Session(resolve(host, self.options), timeout)
        return self.sessions[host.label]

    def close(self) -> None:
        """Close every session."""
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()


class Session:
    """A connected SSH session to one host."""

    def __init__(self, endpoint: Endpoint, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.client = _connect(endpoint, timeout)
        self._sftp: paramiko.SFTPClient | None = None

    @property
    def where(self) -> str:
        """``user@host:port`` for messages."""
        ep = self.endpoint
        return f"{ep.user}@{ep.hostname}:{ep.port}"

    @property
    def sftp(self) -> paramiko.SFTPClient:
        """The session's SFTP channel (opened on first use)."""
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except (OSError, EOFError, paramiko.SSHException) as exc:
                transport = self.client.get_transport()
                if transport is None or not transport.is_active():
                    raise LauncherError(f"lost the SSH connection to {self.where}: {exc}")
                # sshd closes the channel at once when its config names no sftp subsystem
                raise LauncherError(
                    f"{self.where} offers no SFTP, which par needs to copy files there: add "
                    "`Subsystem sftp internal-sftp` to its sshd_config and reload sshd"
                )
        return self._sftp

    def peer_address(self) -> str:
        """The address this machine reached the host at."""
        return str(self.client.get_transport().getpeername()[0])

    def local_address(self) -> str:
        """The address of this machine on the route to the host (what the host sees us as)."""
        return str(self.client.get_transport().sock.getsockname()[0])

    def agent(self, request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Run the agent with the host's Python and return its JSON answer."""
        python = self.endpoint.python
        cmd = f"{shlex.quote(python)} - {shlex.quote(json.dumps(request))}"
        try:
            stdin, stdout, stderr = self.client.exec_command(
                cmd, timeout=timeout or self.timeout + 20
            )
            stdin.write(AGENT_SOURCE)
            stdin.channel.shutdown_write()
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace").strip()
            status = stdout.channel.recv_exit_status()
        except (OSError, paramiko.SSHException) as exc:
            raise LauncherError(f"lost the SSH connection to {self.where}: {exc}")
        if status == NO_PYTHON_STATUS or (status and "No such file" in err and python in err):
            raise LauncherError(
                f"no Python at {python!r} on {self.where}: install Python 3.11+ and par there "
                "(`pip install par-core`), or point --remote-python "
                "(or python = in the hosts file) at it"
            )
        try:
            answer = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            last = err.splitlines()[-1] if err else f"exit status {status}"
            raise LauncherError(f"{python} on {self.where} could not run par's agent: {last}")
        if "error" in answer:
            raise LauncherError(f"{self.where}: {answer['error']}")
        return answer

    def absolute(self, path: str) -> str:
        """``path`` made absolute on the host (relative paths start at the login directory)."""
        if path.startswith("~/"):
            path = path[2:]
        return path if path.startswith("/") else posixpath.join(self.sftp.normalize("."), path)

    def put_private(self, path: str, data: bytes) -> None:
        """Write a file only its owner can read, creating owner-only parent directories."""
        self.makedirs(posixpath.dirname(path))
        with self.sftp.open(path, "wb") as f:
            f.chmod(0o600)  # before any secret is written
            f.write(data)

    def makedirs(self, path: str) -> None:
        """``mkdir -p`` over SFTP, new directories owner-only."""
        current = "/" if path.startswith("/") else ""
        for part in [p for p in path.split("/") if p]:
            current = posixpath.join(current, part)
            try:
                if not stat.S_ISDIR(self.sftp.stat(current).st_mode or 0):
                    raise LauncherError(f"{current} on {self.where} exists and is not a directory")
            except FileNotFoundError:
                self.sftp.mkdir(current, mode=0o700)

    def read(self, path: str) -> bytes | None:
        """The content of a file on the host, or None if it does not exist."""
        try:
            with self.sftp.open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def tail(self, path: str, lines: int = 20) -> str:
        """The last lines of a text file on the host ('' if it does not exist)."""
        try:
            with self.sftp.open(path, "rb") as f:
                size = f.stat().st_size or 0
                f.seek(max(size - 64 * 1024, 0))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Close the SFTP channel and the connection."""
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()


def _connect(ep: Endpoint, timeout: float) -> paramiko.SSHClient:
    """Open an SSH connection, turning each way it can fail into one clear line."""
    where = f"{ep.user}@{ep.hostname}:{ep.port}"
    for key in ep.key_files:
        if not Path(key).exists():
            raise LauncherError(
                f"the key file {key} for {ep.host.name} does not exist: check --key-file"
            )
    client = paramiko.SSHClient()
    if Path(ep.known_hosts).exists():
        client.load_system_host_keys(ep.known_hosts)
    client.set_missing_host_key_policy(
        _AcceptNew(ep.known_hosts) if ep.strict_host_keys == "accept-new" else _RejectUnknown()
    )
    try:
        client.connect(
            ep.hostname,
            port=ep.port,
            username=ep.user,
            key_filename=list(ep.key_files) or None,
            look_for_keys=not ep.key_files,
            allow_agent=True,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
        )
        return client
    except paramiko.AuthenticationException:
        tried = ", ".join(ep.key_files) or "the SSH agent and ~/.ssh/id_*"
        message = (
            f"authentication failed for {where} (tried {tried}): check the user name and key "
            f"(--user, --key-file), and that the public key is in the remote ~/.ssh/authorized_keys"
        )
    except UnknownHostKey:
        message = (
            f"the host key of {where} is not in {ep.known_hosts}: check it and save it with "
            f"`ssh -p {ep.port} {ep.user}@{ep.hostname}` once, or pass --accept-new-hosts"
        )
    except paramiko.BadHostKeyException:
        message = (
            f"the host key of {where} differs from the one in {ep.known_hosts}: if the host was "
            f"reinstalled, remove the old key with `ssh-keygen -R {ep.hostname}`; "
            "otherwise do not connect"
        )
    except socket.gaierror:
        message = f"unknown host {ep.hostname!r}: check the name in --hosts or in ~/.ssh/config"
    except paramiko.ssh_exception.NoValidConnectionsError as exc:
        reasons = sorted({e.strerror or str(e) for e in exc.errors.values()})
        message = f"host {where} is unreachable: {'; '.join(reasons)} ({_CHECK_SSHD})"
    except TimeoutError:
        message = (
            f"host {where} is unreachable: no answer within {timeout:.0f} s "
            "(is it up, and the address right?)"
        )
    except OSError as exc:
        reason = exc.strerror or str(exc)
        message = f"host {where} is unreachable: {reason} ({_CHECK_SSHD})"
    except paramiko.SSHException as exc:
        message = f"SSH to {where} failed: {exc}"
    client.close()
    raise LauncherError(message)
