"""The connection file: what a client or an engine needs to reach a controller."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import paths
from .errors import ClusterError


@dataclass
class ConnectionInfo:
    """Addresses and key of a running controller."""

    cluster_id: str
    key: str  # hex
    client_url: str
    engine_url: str
    control_url: str
    direct_url: str  # the direct device's side for clients (see controller/mux.py)
    engine_direct_url: str  # and for engines
    controller_pid: int
    location: str
    signature_scheme: str = "blake2b-128"
    curve_serverkey: str = ""  # the controller's public Curve key; empty: no encryption

    def secure(self, sock: Any) -> None:
        """Set up Curve encryption on a socket about to connect, if this cluster uses it."""
        if self.curve_serverkey:
            from .curve import make_client

            make_client(sock, self.curve_serverkey)

    @property
    def key_bytes(self) -> bytes:
        """The cluster key as bytes."""
        return bytes.fromhex(self.key)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def write(self, path: Path) -> None:
        """Write to ``path``, readable only by its owner."""
        paths.write_private_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConnectionInfo:
        """Build from a dict, ignoring keys this version does not know."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        missing = (
            set(cls.__dataclass_fields__) - set(known) - {"signature_scheme", "curve_serverkey"}
        )
        if missing:
            raise ClusterError(f"connection file lacks {', '.join(sorted(missing))}")
        return cls(**known)


def load(path: str | Path, timeout: float = 0.0) -> ConnectionInfo:
    """Read a connection file, waiting up to ``timeout`` seconds for it to appear."""
    path = Path(path)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() >= deadline:
            raise ClusterError(
                f"connection file {path} not found: start a cluster with `par start` "
                "or pass the path of an existing connection file"
            )
        time.sleep(0.05)
    try:
        return ConnectionInfo.from_dict(paths.read_json(path))
    except (ValueError, OSError) as exc:
        raise ClusterError(f"connection file {path} is unreadable: {exc}") from exc


def resolve(connection_info: str | Path | None, cluster_id: str | None) -> Path:
    """Find the connection file for a path, a cluster id, or the default cluster."""
    if connection_info is not None:
        return Path(connection_info)
    cid = cluster_id or paths.DEFAULT_CLUSTER_ID
    path = paths.connection_file(cid)
    if not paths.cluster_dir(cid).exists():
        running = paths.list_cluster_ids()
        hint = f"; running clusters: {', '.join(running)}" if running else ""
        raise ClusterError(
            f"no cluster {cid!r} is running: start one with `par start"
            f"{'' if cid == paths.DEFAULT_CLUSTER_ID else ' --cluster-id ' + cid}`{hint}"
        )
    return path
