"""The connection file: what a client or an engine needs to reach a controller.

Its fields are checked when it is read, so that a damaged or hand-edited file
gets one line naming the field and the way out, not a failure deep in ZeroMQ.
"""

from __future__ import annotations

import re
import string
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import paths
from .errors import ClusterError

SIGNATURE_SCHEME = "blake2b-128"  # the only one par signs with (see protocol.Session)
URL_FIELDS = ("client_url", "engine_url", "control_url", "direct_url", "engine_direct_url")
_URL = re.compile(r"tcp://(\[[0-9A-Za-z:.%]+\]|[^\s:/\[\]]+):(\d{1,5})")
_Z85 = frozenset(string.digits + string.ascii_letters + ".-:+=^!/*?&<>()[]{}@%$#")
# Fields older files lack.
OPTIONAL = {"signature_scheme", "curve_serverkey", "max_message_bytes", "engine_room"}
FIX = "use the connection file the controller wrote (`par list` shows the running clusters)"


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
    signature_scheme: str = SIGNATURE_SCHEME
    curve_serverkey: str = ""  # the controller's public Curve key; empty: no encryption
    max_message_bytes: int = 0  # the largest frame the controller takes; 0: not said
    engine_room: int = -1  # engines its limit on open files holds (par.openfiles); -1: no bound

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError("; ".join([*problems, FIX]))

    def _problems(self) -> list[str]:
        """What is wrong with these fields, one phrase each (see :func:`load`)."""
        out = []
        key = self.key if isinstance(self.key, str) else ""
        bad = next((i for i, c in enumerate(key) if c not in string.hexdigits), None)
        if bad is not None:  # the key is a secret: name the culprit, not the key
            out.append(f"its key is not hexadecimal (character {key[bad]!r} at {bad})")
        elif not key or len(key) % 2:
            out.append(f"its key has {len(key)} hexadecimal digits, not an even number")
        for name in URL_FIELDS:
            url = getattr(self, name)
            m = _URL.fullmatch(url) if isinstance(url, str) else None
            if m is None or not 0 < int(m.group(2)) < 65536:
                out.append(f"its {name} {url!r} is not an address tcp://HOST:PORT")
        if self.signature_scheme != SIGNATURE_SCHEME:
            out.append(
                f"its signature_scheme {self.signature_scheme!r} is not one par signs with "
                f"({SIGNATURE_SCHEME!r})"
            )
        public = self.curve_serverkey
        if public and not (isinstance(public, str) and len(public) == 40 and set(public) <= _Z85):
            out.append("its curve_serverkey is not a CurveZMQ public key (40 Z85 characters)")
        if type(self.max_message_bytes) is not int or self.max_message_bytes < 0:
            out.append(f"its max_message_bytes {self.max_message_bytes!r} is not a byte count")
        if type(self.engine_room) is not int or self.engine_room < -1:
            out.append(f"its engine_room {self.engine_room!r} is not a count of engines")
        return out

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
        missing = set(cls.__dataclass_fields__) - set(known) - OPTIONAL
        if missing:
            raise ValueError(f"it lacks {', '.join(sorted(missing))}; {FIX}")
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
        data = paths.read_json(path)
    except (ValueError, OSError) as exc:
        raise ClusterError(f"connection file {path} is unreadable: {exc}") from exc
    try:
        return ConnectionInfo.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise ClusterError(f"connection file {path} is not usable: {exc}") from None


def resolve(connection_info: str | Path | None, cluster_id: str | None) -> Path:
    """Find the connection file for a path, a cluster id, or the default cluster."""
    if isinstance(connection_info, str) and "://" in connection_info:
        raise ClusterError(
            f"{connection_info!r} is an address, not a connection file: pass the path of the "
            "connection file its controller wrote, or a cluster_id (`par list` shows them)"
        )
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
