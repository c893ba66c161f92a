"""The example third-party plugin (examples/plugin) is installed, listed, and conforms."""

from __future__ import annotations

import os
import subprocess

from par.testing import LauncherConformance, par_cluster, par_home  # noqa: F401 - fixtures

from ..conftest import par_cli


class TestExampleLauncher(LauncherConformance):
    """The conformance suite, run against the installed ``example`` plugin."""

    launcher = "example"
    options = {"nice": 5, "env": "EXAMPLE_ENGINE={i}"}


def _launchers(**env: str) -> list[list[str]]:
    result = subprocess.run(
        par_cli("launchers"), capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.splitlines()[1:]]


def test_par_launchers_shows_the_plugin_its_package_version_and_options() -> None:
    rows = _launchers()
    assert ["example", "engines", "par-example-launcher", "0.1.0", "--nice", "--env"] in rows
    assert any(row[:2] == ["local", "engines"] for row in rows)


def test_par_load_plugins_limits_which_plugins_load() -> None:
    rows = _launchers(PAR_LOAD_PLUGINS="example")
    assert [row[0] for row in rows] == ["example"]


def test_a_bad_option_value_is_one_line_on_the_command_line() -> None:
    result = subprocess.run(
        par_cli("start", "--launcher", "example", "-n", "1", "--env", "NOEQUALS"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "par start: error: --env: 'NOEQUALS' is not NAME=VALUE; write e.g. 'OMP_NUM_THREADS=1'"
    )
