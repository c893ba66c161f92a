"""Where a running cluster is described on disk, and owner-only file writes.

Layout::

    $PAR_HOME/clusters/<cluster_id>/connection.json   what clients and engines need (0600)
    $PAR_HOME/clusters/<cluster_id>/cluster.json      launchers' state, for par stop/list (0600)
    $PAR_HOME/clusters/<cluster_id>/logs/              controller and engine output
    $PAR_HOME/clusters/<cluster_id>/records.sqlite     task records (``--db sqlite``)
    $PAR_HOME/previous/<cluster_id>-<time>/            what an ended cluster left: its
                                                       database, and after a crash its logs
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, TextIO

from .errors import ClusterError

DEFAULT_CLUSTER_ID = "default"


def cluster_id_of(cluster_id: str | None, profile: str | None) -> str | None:
    """The cluster an ipyparallel ``profile=`` names: par has no profiles, so a profile is
    a cluster id (ipyparallel's ``default`` profile is par's default cluster)."""
    if profile is None:
        return cluster_id or None
    if cluster_id:
        raise ValueError(
            f"par has no profiles: name the cluster by cluster_id={cluster_id!r} alone, "
            f"without profile={profile!r}"
        )
    return profile


_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def par_home() -> Path:
    """The per-user directory par keeps cluster files in (``$PAR_HOME``)."""
    env = os.environ.get("PAR_HOME")
    return Path(env).expanduser() if env else Path.home() / ".par"


def check_cluster_id(cluster_id: str) -> str:
    """Return ``cluster_id`` if it is a valid name, else raise ValueError."""
    if not _ID_RE.match(cluster_id):
        raise ValueError(
            f"invalid cluster id {cluster_id!r}: use letters, digits, '.', '_' or '-' "
            "(at most 64 characters, starting with a letter or digit)"
        )
    return cluster_id


def cluster_dir(cluster_id: str) -> Path:
    """The directory describing one cluster."""
    return par_home() / "clusters" / check_cluster_id(cluster_id)


def connection_file(cluster_id: str) -> Path:
    """The connection file of a cluster."""
    return cluster_dir(cluster_id) / "connection.json"


def cluster_file(cluster_id: str) -> Path:
    """The cluster (launcher state) file of a cluster."""
    return cluster_dir(cluster_id) / "cluster.json"


def log_dir(cluster_id: str) -> Path:
    """The directory of a cluster's process logs, created owner-only."""
    path = cluster_dir(cluster_id) / "logs"
    make_private_dir(path)
    return path


def make_private_dir(path: Path) -> None:
    """Create a directory (and parents) readable only by its owner.

    An existing directory is left as it is: it may be the user's own (``--file
    /tmp/conn.json``), and par must never change the permissions of a directory
    it did not create.
    """
    if path.exists():
        return
    try:
        path.mkdir(parents=True, mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    except OSError as exc:
        home = par_home()
        if home != path and home not in path.parents:
            raise
        raise ClusterError(
            f"cannot create {path}: {exc.strerror}; set PAR_HOME to a folder you can write "
            f"(it is {home})"
        ) from exc


def write_private_json(path: Path, data: Any) -> None:
    """Atomically write JSON to a file only its owner can read."""
    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def create_private_file(path: Path) -> None:
    """Create an empty file only its owner can read, unless it exists (then it is the
    user's, and left as it is)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def open_private_log(path: str | Path) -> int:
    """A descriptor appending to ``path``, created readable only by its owner: logs hold
    what the user's tasks print."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def log_file_stream(path: Path) -> TextIO:
    """A line-buffered text stream appending to a log only its owner can read (what a
    process run by hand with ``--log-to-file`` logs to)."""
    return os.fdopen(open_private_log(path), "a", buffering=1)


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    with open(path) as f:
        return json.load(f)


def list_cluster_ids() -> list[str]:
    """Ids of clusters that have a cluster or connection file."""
    root = par_home() / "clusters"
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if (p / "cluster.json").exists() or (p / "connection.json").exists()
    )


def cluster_folders() -> list[str]:
    """Ids of every folder under ``clusters/``: a cluster's, or what one left."""
    root = par_home() / "clusters"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and _ID_RE.match(p.name))


def remove_cluster_dir(cluster_id: str) -> None:
    """Forget a cluster: remove its directory and everything in it."""
    shutil.rmtree(cluster_dir(cluster_id), ignore_errors=True)
