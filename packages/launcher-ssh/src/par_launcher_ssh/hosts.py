"""Which hosts engines run on: the ``--hosts`` spec, the hosts file, and ``~/.ssh/config``.

A host spec is a comma-separated list of ``[user@]host[:count]`` (IPv6
addresses in brackets: ``[fd00::2]:4``). A hosts file is TOML::

    [defaults]                      # optional, for every host
    python = "/opt/venv/bin/python"

    [[host]]
    name = "node1"                  # host name, address, or ~/.ssh/config alias
    user = "alice"
    port = 2222
    key_file = "~/.ssh/id_ed25519"
    engines = 4
    env = { OMP_NUM_THREADS = "1" }

Settings are taken, first found: the host's own entry, the launcher's
options, ``~/.ssh/config``, then SSH's defaults.
"""

from __future__ import annotations

import getpass
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from par.launcher import LauncherError

_SPEC_RE = re.compile(
    r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[^\]]+\]|[^:\s\[\]]+)(?::(?P<count>\d+))?$"
)
_HOST_KEYS = {"name", "user", "port", "key_file", "python", "engines", "env"}


@dataclass(frozen=True)
class Host:
    """One SSH host as the user named it, with the settings given for it."""

    name: str
    user: str = ""
    port: int = 0
    key_file: str = ""
    python: str = ""
    engines: int = 0  # 0: a share of the engine set's n
    env: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How messages name this host: ``user@name`` as given."""
        return f"{self.user}@{self.name}" if self.user else self.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: getattr(self, k) for k in sorted(_HOST_KEYS)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Host:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in data.items() if k in _HOST_KEYS})


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect to a host, once every source of settings is applied."""

    host: Host
    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    python: str
    strict_host_keys: str  # "yes" or "accept-new"
    known_hosts: str


def parse_spec(spec: str) -> list[Host]:
    """Hosts from ``alice@node1:4,node2:8``."""
    hosts = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        m = _SPEC_RE.match(item)
        if not m:
            raise LauncherError(
                f"bad host {item!r} in --hosts: write [user@]host[:engines], e.g. alice@node1:4"
            )
        name = m["host"].strip("[]")
        hosts.append(Host(name, user=m["user"] or "", engines=int(m["count"] or 0)))
    return hosts


def load_file(path: str | Path) -> list[Host]:
    """Hosts from a TOML hosts file (see the module docstring)."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise LauncherError(f"cannot read hosts file {path}: {exc.strerror}")
    except tomllib.TOMLDecodeError as exc:
        raise LauncherError(f"hosts file {path} is not valid TOML: {exc}")
    defaults = data.get("defaults", {})
    entries = data.get("host", [])
    if not isinstance(entries, list) or not entries:
        raise LauncherError(
            f"hosts file {path} lists no hosts: add [[host]] tables with name = ..."
        )
    hosts = []
    for entry in entries:
        merged = {**defaults, **entry, "env": {**defaults.get("env", {}), **entry.get("env", {})}}
        unknown = set(merged) - _HOST_KEYS
        if unknown or "name" not in merged:
            raise LauncherError(
                f"hosts file {path}: each [[host]] needs name and may set "
                f"{', '.join(sorted(_HOST_KEYS - {'name'}))} "
                f"(found {', '.join(sorted(unknown)) or 'no name'})"
            )
        merged["env"] = {str(k): str(v) for k, v in merged["env"].items()}
        hosts.append(Host.from_dict(merged))
    return hosts


def select(spec: str, hosts_file: str) -> list[Host]:
    """The hosts named by the ``hosts`` and ``hosts_file`` options (both may be given)."""
    hosts = (load_file(hosts_file) if hosts_file else []) + parse_spec(spec)
    if not hosts:
        raise LauncherError(
            "the ssh launcher needs hosts: pass --hosts alice@node1:4,node2 or --hosts-file FILE"
        )
    return hosts


def plan(hosts: list[Host], n: int) -> list[tuple[Host, int]]:
    """How many engines each host runs: its own count, else a share of ``n`` (at least 1)."""
    counted = sum(h.engines for h in hosts)
    free = [i for i, h in enumerate(hosts) if not h.engines]
    left = max(n - counted, len(free))
    counts = [h.engines for h in hosts]
    for j, i in enumerate(free):
        counts[i] = left // len(free) + (j < left % len(free))
    return list(zip(hosts, counts, strict=True))


def resolve(host: Host, defaults: dict[str, Any]) -> Endpoint:
    """Apply the launcher's options and ``~/.ssh/config`` to a host."""
    config_path = Path(str(defaults.get("ssh_config") or "~/.ssh/config")).expanduser()
    config = paramiko.SSHConfig()
    if config_path.exists():
        try:
            config = paramiko.SSHConfig.from_path(str(config_path))
        except Exception as exc:  # paramiko raises several types for a bad config
            raise LauncherError(f"cannot parse SSH config {config_path}: {exc}")
    seen = config.lookup(host.name)
    key = host.key_file or defaults.get("key_file") or ""
    keys = (key,) if key else tuple(seen.get("identityfile", []))
    strict = str(seen.get("stricthostkeychecking", "yes")).lower()
    accept_new = bool(defaults.get("accept_new_hosts")) or strict in ("no", "accept-new", "off")
    known = (
        defaults.get("known_hosts")
        or seen.get("userknownhostsfile", "~/.ssh/known_hosts").split()[0]
    )
    return Endpoint(
        host=host,
        hostname=seen.get("hostname", host.name),
        port=int(host.port or defaults.get("port") or seen.get("port", 22)),
        user=host.user or defaults.get("user") or seen.get("user") or getpass.getuser(),
        key_files=tuple(os.path.expanduser(k) for k in keys),
        python=host.python or defaults.get("remote_python") or "python3",
        strict_host_keys="accept-new" if accept_new else "yes",
        known_hosts=os.path.expanduser(str(known)),
    )
