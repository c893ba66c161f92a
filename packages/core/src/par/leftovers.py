"""What a cluster leaves on this machine, found even where its files do not say.

A cluster's launchers record the processes they start (the cluster file), but
processes can outlive that record: a controller brought back by hand (``par
controller --restore``) is one no launcher started, and a truncated cluster file
names none. This module finds them by what they run: this user's par engines and
controllers started on the cluster's connection file, and the controller that
file names. ``par start`` and ``par stop`` use it so that a cluster is never
taken for gone while its processes run.

It also keeps what must outlive a cluster. Its task database is never deleted:
when the cluster's folder goes, the database moves to
``$PAR_HOME/previous/<cluster_id>-<time>/``, and after a crash the logs go with
it (they say what happened), until ``par start --clean-logs`` deletes them.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import psutil

from . import paths
from .process import MARK_VARIABLE, ProcessRef, stop_all

_ROLES = ("engine", "controller")


def _is_par(cmdline: list[str]) -> bool:
    """Whether a command line runs a par engine or controller (``python -m par.engine``,
    ``par controller``...; a forked engine has its fork server's, ``par.engine.forkserver``)."""
    for i, arg in enumerate(cmdline[:4]):
        if arg in ("par.engine", "par.engine.forkserver", "par.controller"):
            return True
        if os.path.basename(arg) == "par" and i + 1 < len(cmdline) and cmdline[i + 1] in _ROLES:
            return True
    return False


def _file_argument(cmdline: list[str]) -> str | None:
    """The ``--file`` a par process was given."""
    for i, arg in enumerate(cmdline):
        if arg == "--file" and i + 1 < len(cmdline):
            return cmdline[i + 1]
        if arg.startswith("--file="):
            return arg.split("=", 1)[1]
    return None


def _same_file(arg: str, proc: psutil.Process, target: Path) -> bool:
    try:
        path = arg if os.path.isabs(arg) else os.path.join(proc.cwd(), arg)
    except psutil.Error:
        return False
    return os.path.realpath(path) == os.path.realpath(target)


def named_controller(connection_file: Path) -> psutil.Process | None:
    """The running controller a connection file names: its pid is a par controller that
    started before the file was written (so not a process that reused the pid)."""
    try:
        pid = int(paths.read_json(connection_file)["controller_pid"])
        written = connection_file.stat().st_mtime
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE
        if alive and proc.create_time() <= written + 1 and _is_par(proc.cmdline()):
            return proc
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        pass
    return None


def processes(connection_file: Path) -> list[psutil.Process]:
    """This user's par processes serving the cluster of a connection file."""
    found: dict[int, psutil.Process] = {}
    controller = named_controller(connection_file)
    if controller is not None:
        found[controller.pid] = controller
    me = os.getuid()
    for proc in psutil.process_iter(["uids", "cmdline"]):
        try:
            uids, cmdline = proc.info["uids"], proc.info["cmdline"] or []
            if uids is None or uids.real != me or proc.pid == os.getpid() or not _is_par(cmdline):
                continue
            arg = _file_argument(cmdline)
            if arg is not None and _same_file(arg, proc, connection_file):
                found[proc.pid] = proc
        except psutil.Error:
            continue
    return list(found.values())


def engines(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The engines among processes :func:`processes` found: not the fork servers (a forked
    engine runs its server's command line; the server is its parent)."""
    found = {p.pid for p in procs}
    servers = set()
    for proc in procs:
        try:
            if proc.ppid() in found:
                servers.add(proc.ppid())
        except psutil.Error:
            continue
    return [p for p in procs if p.pid not in servers]


def stop(procs: list[psutil.Process], timeout: float = 10.0) -> None:
    """Stop processes found here (SIGTERM, then SIGKILL after ``timeout``), and what
    they started (they carry their launch mark)."""
    refs = []
    for proc in procs:
        try:
            mark = proc.environ().get(MARK_VARIABLE, "")
            refs.append(ProcessRef(proc.pid, proc.create_time(), mark=mark))
        except psutil.Error:
            continue
    stop_all(refs, timeout)


def _database_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.sqlite*"))  # with SQLite's -wal and -shm, which hold data too


def has_database(cluster_id: str) -> bool:
    """Whether a cluster's folder holds a task database."""
    return bool(_database_files(paths.cluster_dir(cluster_id)))


def clear(cluster_id: str, crashed: bool = False) -> Path | None:
    """Remove a cluster's folder, keeping its task database (and, if it ``crashed``, its
    logs and events) under ``$PAR_HOME/previous``; return where they went, or None."""
    folder = paths.cluster_dir(cluster_id)
    keep = _database_files(folder)
    if crashed:
        keep += [p for p in (folder / "logs", folder / "events.jsonl") if p.exists()]
    kept = None
    if keep:
        kept = _previous(cluster_id)
        for path in keep:
            shutil.move(path, kept / path.name)
    paths.remove_cluster_dir(cluster_id)
    return kept


_STAMP = r"-\d{8}-\d{6}(-\d+)?"  # what _previous appends to the cluster id
_LOGS = ("logs", "events.jsonl")  # what of a kept folder is logs (never a database)


def clean_logs(cluster_id: str) -> list[Path]:
    """Delete the logs (and launcher events) that ended runs of ``cluster_id`` left under
    ``$PAR_HOME/previous``, nothing else: a kept task database stays, and a folder is
    removed only once nothing is left in it. Return the folders cleaned."""
    root = paths.par_home() / "previous"
    mine = re.compile(re.escape(paths.check_cluster_id(cluster_id)) + _STAMP)
    cleaned = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not (folder.is_dir() and mine.fullmatch(folder.name)):
            continue
        found = [folder / name for name in _LOGS if (folder / name).exists()]
        if not found:
            continue
        for path in found:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        cleaned.append(folder)
        if not any(folder.iterdir()):
            folder.rmdir()
    return cleaned


def _previous(cluster_id: str) -> Path:
    """A new folder for what an ended cluster left: ``previous/<id>-<time>``."""
    root = paths.par_home() / "previous"
    paths.make_private_dir(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        path = root / (f"{cluster_id}-{stamp}" + (f"-{n}" if n else ""))
        try:
            path.mkdir(mode=0o700)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free folder name under {root} for cluster {cluster_id!r}")
