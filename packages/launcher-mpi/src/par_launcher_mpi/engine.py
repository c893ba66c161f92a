"""``python -m par_launcher_mpi.engine``: one par engine as one MPI rank (what mpiexec runs).

The rank's first process forks the engine and stays to watch it
(:func:`.ranks.watch`). The engine initialises MPI, checks that it really is
part of the job (an mpi4py built for another MPI starts every rank alone),
records itself for its launcher, moves its output to its own log, then runs
an ordinary engine that registers with its group, rank and size so that
engine ids follow rank order. Imports stay few: hundreds of ranks may start
at once on few cores.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from par.paths import open_private_log

from .mpiexec import compatible, family
from .ranks import RANK_SAYS, SAID_FILE, RankRecord, watch

EXIT_STARTUP = 3


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m par_launcher_mpi.engine")
    parser.add_argument("--file", required=True, help="the cluster's connection file")
    parser.add_argument("--group", required=True, help="id of this engine set (unique per job)")
    parser.add_argument("--size", type=int, required=True, help="number of ranks mpiexec starts")
    parser.add_argument("--dir", required=True, help="directory for rank records and logs")
    parser.add_argument("--mpi", default="unknown", help="MPI family of the mpiexec used")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to try to register")
    parser.add_argument("--work-dir", default="", help="directory to run tasks in")
    return parser.parse_args(argv)


def _say(text: str, directory: Path | None = None) -> None:
    print(RANK_SAYS + text, file=sys.stderr, flush=True)
    if directory is not None:
        # A rank failing at startup aborts the job at once, which can cut mpiexec's
        # forwarding of its stderr: the file makes sure the reason reaches the report.
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / SAID_FILE, "a") as f:
            f.write(RANK_SAYS + text + "\n")


def _import_mpi(directory: Path) -> Any:
    """mpi4py's MPI module (initialising MPI), or None after saying what to install."""
    try:
        from mpi4py import MPI
    except ModuleNotFoundError as exc:
        if exc.name != "mpi4py":
            raise
        _say(
            f"mpi4py is not installed in {sys.executable}: install it there with "
            "`pip install mpi4py` (`pip install mpi4py mpich` brings an MPI too)",
            directory,
        )
        return None
    except ImportError as exc:  # mpi4py found, its MPI library not (built against another MPI)
        _say(
            f"mpi4py cannot load its MPI library ({exc}): install the MPI mpi4py was built with, "
            "or rebuild it for yours: `pip install --no-binary=mpi4py --force-reinstall mpi4py`",
            directory,
        )
        return None
    return MPI


def _mismatch(launcher: str, library: str, size: int, expected: int) -> str:
    """Why this rank is not a rank of the intended job, or ''."""
    if not compatible(launcher, family(library)):
        return (
            f"mpi4py uses {library!r}, but the mpiexec is from {launcher}: use the mpiexec of "
            "mpi4py's MPI (--mpiexec PATH), or rebuild mpi4py for this MPI "
            "(`pip install --no-binary=mpi4py --force-reinstall mpi4py`)"
        )
    if size != expected:
        return (
            f"this rank sees an MPI job of size {size}, not {expected}: mpi4py ({library!r}) "
            "is not the MPI of this mpiexec; use the mpiexec of mpi4py's MPI (--mpiexec PATH)"
        )
    return ""


def _redirect_output(log: Path) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to its own log."""
    fd = open_private_log(log)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """Run one engine as this MPI rank; return its exit status."""
    args = _parse(argv)
    directory = Path(args.dir)
    status = watch(directory)
    if status is not None:
        return status
    MPI = _import_mpi(directory)
    if MPI is None:
        return EXIT_STARTUP
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    # Open MPI ends its version text with the C string's NUL: drop it, or every report and
    # `rc.engines()` would carry it.
    library = " ".join(MPI.Get_library_version().replace("\0", "").splitlines()[0].split())
    problem = _mismatch(args.mpi, library, size, args.size)
    if problem:
        _say(problem, directory)
        comm.Abort(EXIT_STARTUP)  # end the whole job now, not after the other ranks time out
    directory.mkdir(parents=True, exist_ok=True)  # absent on hosts that do not share the disk
    RankRecord(rank, os.getpid(), socket.gethostname(), args.group).write(directory)
    _redirect_output(RankRecord.log_path(directory, rank))
    faulthandler.enable()  # a crash in MPI or native user code leaves a traceback in the log
    info = {"group": args.group, "rank": rank, "size": size, "mpi": library}
    os.environ["PAR_ENGINE_INFO"] = json.dumps(info)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s par.engine %(message)s")
    _say(f"rank {rank} of {size} on {socket.gethostname()}, pid {os.getpid()}, {library}")

    from par.engine.__main__ import enter_work_dir
    from par.engine.app import main as run_engine

    try:
        enter_work_dir(args)
        status = run_engine(args.file, timeout=args.timeout)
    except SystemExit as exc:  # how SIGTERM (status 0) and a lost controller end an engine
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr, flush=True)
        status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except Exception as exc:  # one clear line, as `par engine` prints
        _say(str(exc))
        status = 1
    if status:
        # A rank that fails alone would wait in MPI_Finalize for the others forever.
        comm.Abort(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
