"""Run ipyparallel 9.2.0's own client tests against par (``nox -s compat``).

The test modules are ipyparallel's, fetched at run time and never kept in this
repository: ``pip download`` puts the wheel in a cache directory (checked against
its known hash), and the seven client test modules and their ``clienttest`` base
are extracted from it into a work directory, next to a copy of the import shim
(``shim/ipyparallel``: ipyparallel's names resolved on par, and fixtures that run
a par cluster). pytest then runs there, in this process, with ``report.py`` as a
plugin: tests in ``exemptions.toml`` may fail (each says why), any other failure
fails the run.

    python tests/compat/run.py [--cache DIR] [--work DIR] [PYTEST ARGS...]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from report import ExemptionReport  # noqa: E402

VERSION = "9.2.0"
WHEEL = f"ipyparallel-{VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "3d62ffa1f7bb6372c325e4e59798d2ad4ef4c8a43fb7461b97adba7d7951cadd"
TEST_MODULES = (
    "test_view",
    "test_lbview",
    "test_asyncresult",
    "test_client",
    "test_dependency",
    "test_remotefunction",
    "test_executor",
)
SUPPORT_MODULES = ("clienttest",)  # what the test modules import from ipyparallel.tests

# The run's own pytest configuration, so that pytest never takes the repository's.
# clienttest times each test out with SIGALRM (30 s); pytest-timeout, by thread, is the
# backstop for a hang that signal cannot break.
PYTEST_INI = """\
[pytest]
addopts = -p no:cacheprovider -ra
timeout = 180
timeout_method = thread
asyncio_default_fixture_loop_scope = function
"""


def fetch_wheel(cache: Path) -> Path:
    """The ipyparallel wheel, downloaded into ``cache`` unless it is there already."""
    wheel = cache / WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", f"ipyparallel=={VERSION}", "--no-deps"]
        subprocess.run([*pip, "--only-binary=:all:", "--dest", str(cache), "--quiet"], check=True)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel} has sha256 {digest}, not {WHEEL_SHA256}: delete it and rerun")
    return wheel


def lay_out(wheel: Path, work: Path) -> Path:
    """Fill ``work`` with the shim and the extracted tests; return the tests' directory."""
    package = work / "ipyparallel"
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(HERE / "shim" / "ipyparallel", package)
    tests = package / "tests"
    with zipfile.ZipFile(wheel) as zf:
        for name in SUPPORT_MODULES + TEST_MODULES:
            (tests / f"{name}.py").write_bytes(zf.read(f"ipyparallel/tests/{name}.py"))
    (work / "pytest.ini").write_text(PYTEST_INI)
    return tests


def main(argv: list[str]) -> int:
    """Fetch, lay out and run; the exit status is pytest's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "par-compat")
    parser.add_argument("--work", type=Path, help="work directory (default: a temporary one)")
    args, pytest_args = parser.parse_known_args(argv)
    exemptions = tomllib.loads((HERE / "exemptions.toml").read_text())
    wheel = fetch_wheel(args.cache)
    work = args.work or Path(tempfile.mkdtemp(prefix="par-compat-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    tests = lay_out(wheel, work)
    par_home = work / "par_home"
    shutil.rmtree(par_home, ignore_errors=True)
    par_home.mkdir()
    # Engines unpickle functions of the test modules by reference, as ipyparallel's
    # engines do: they import the shim and the tests from the work directory too.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work), os.getenv("PYTHONPATH")]))
    os.environ["PAR_HOME"] = str(par_home)
    sys.path.insert(0, str(work))
    os.chdir(work)
    paths = [str(tests / f"{name}.py") for name in TEST_MODULES]
    return pytest.main([*paths, *pytest_args], plugins=[ExemptionReport(exemptions)])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
