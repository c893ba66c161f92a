"""Finding plugins: real entry points of small distributions made on the fly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import par
from par.launcher import EngineSetLauncher, LaunchContext, read_events

from ..conftest import par_cli

GOOD = """
from par.hookspecs import hookimpl
from par_launcher_local import LocalEngineSetLauncher

class {cls}(LocalEngineSetLauncher):
    PLUGIN_NAME = "{name}"

@hookimpl
def par_register_launchers(register):
    register({cls})
"""


CHECKED = """
import os

from par.hookspecs import hookimpl
from par.launcher import LauncherError, Option
from par_launcher_local import LocalEngineSetLauncher


class Checked(LocalEngineSetLauncher):
    PLUGIN_NAME = "checked"
    OPTIONS = (Option("level", int, 1, "from 0 to 9"),)

    def __init__(self, context, n=1, **options):
        super().__init__(context, n=n, **options)
        if not 0 <= self.options["level"] <= 9:
            raise LauncherError(f"--level must be 0 to 9, not {self.options['level']}")


@hookimpl
def par_register_launchers(register):
    register(Checked)


@hookimpl
def par_launcher_event(event):
    with open(os.environ["CHECKED_EVENTS"], "a") as f:
        f.write(event["kind"] + ":" + event["event"] + "\\n")
"""


def make_dist(site: Path, dist: str, module: str, ep_name: str, source: str) -> None:
    """Install a tiny distribution with one `par` entry point into ``site``."""
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[par]\n{ep_name} = {module}\n")
    (site / f"{module}.py").write_text(source)


def run_par(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run(par_cli(*args), capture_output=True, text=True, timeout=60, env=full_env)


def test_a_broken_plugin_is_reported_and_skipped(tmp_path: Path) -> None:
    make_dist(tmp_path, "par-broken", "par_broken", "broken", "raise ImportError('no numpy here')")
    listing = run_par(tmp_path, "launchers")
    assert listing.returncode == 0
    assert "local" in listing.stdout
    assert "broken     BROKEN" in listing.stdout and "no numpy here" in listing.stdout
    help_ = run_par(tmp_path, "start", "--launcher", "local", "--help")
    assert help_.returncode == 0
    unknown = run_par(tmp_path, "start", "--launcher", "broken", "-n", "1")
    assert unknown.returncode == 1
    assert "failed to load: ImportError: no numpy here" in unknown.stderr


def test_two_plugins_with_one_launcher_name_are_refused(tmp_path: Path) -> None:
    make_dist(tmp_path, "par-dup-a", "par_dup_a", "dupa", GOOD.format(cls="A", name="dup"))
    make_dist(tmp_path, "par-dup-b", "par_dup_b", "dupb", GOOD.format(cls="B", name="dup"))
    result = run_par(tmp_path, "start", "--launcher", "dup", "-n", "1")
    assert result.returncode == 1
    assert "two plugins provide the engines launcher 'dup'" in result.stderr
    assert "par-dup-a" in result.stderr and "par-dup-b" in result.stderr


def test_par_load_plugins_allow_lists_plugins(tmp_path: Path) -> None:
    make_dist(tmp_path, "par-extra", "par_extra", "extra", GOOD.format(cls="X", name="extra"))
    everything = run_par(tmp_path, "launchers")
    assert "extra      engines     par-extra              1.2.3" in everything.stdout
    only_local = run_par(tmp_path, "launchers", PAR_LOAD_PLUGINS="local")
    assert "extra" not in only_local.stdout and "local" in only_local.stdout
    none = run_par(tmp_path, "start", "--launcher", "local", "-n", "1", PAR_LOAD_PLUGINS="")
    assert none.returncode == 1
    assert "unknown controller launcher 'local' (PAR_LOAD_PLUGINS='' leaves it out)" in none.stderr


def test_a_wrong_option_value_fails_in_one_line_before_any_process_starts(tmp_path: Path) -> None:
    make_dist(tmp_path, "par-checked", "par_checked", "checked", CHECKED)
    events = tmp_path / "events.txt"
    result = run_par(
        tmp_path,
        "start",
        "--launcher",
        "checked",
        "-n",
        "1",
        "--level",
        "12",
        CHECKED_EVENTS=str(events),
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "par start: error: --level must be 0 to 9, not 12"
    )
    assert not events.exists(), f"launchers started first: {events.read_text()}"
    started = run_par(
        tmp_path,
        "start",
        "--launcher",
        "checked",
        "-n",
        "1",
        "--level",
        "3",
        "--daemonize",
        "--cluster-id",
        "checked",
        CHECKED_EVENTS=str(events),
    )
    assert started.returncode == 0, started.stderr
    stopped = run_par(tmp_path, "stop", "--cluster-id", "checked", CHECKED_EVENTS=str(events))
    assert stopped.returncode == 0, stopped.stderr
    assert events.read_text().split()[:2] == ["controller:starting", "controller:running"]


def test_launcher_options_show_in_help_and_bad_options_are_refused() -> None:
    result = subprocess.run(
        par_cli("start", "--launcher", "local", "--help"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "options of the 'local' controller launcher" in result.stdout
    assert "--ip IP" in result.stdout
    try:
        par.Cluster(n=1, colour="blue")
    except TypeError as exc:
        assert "unknown option(s) colour" in str(exc)
        assert "ip" in str(exc)
    else:
        raise AssertionError("an unknown option was accepted")


def test_launchers_record_lifecycle_events() -> None:
    cluster = par.Cluster(n=1)
    rc = cluster.start_and_connect_sync()
    try:
        cluster.add_engines(1)
        rc.wait_for_engines(2, timeout=30)
        events = [(e["kind"], e["event"]) for e in read_events(cluster.context.cluster_dir)]
        assert events == [
            ("controller", "starting"),
            ("controller", "running"),
            ("engines", "starting"),
            ("engines", "running"),
            ("engines", "starting"),
            ("engines", "running"),
        ]
        cluster.stop_engines_sync()
        assert read_events(cluster.context.cluster_dir)[-1]["event"] == "stopped"
    finally:
        cluster.stop_cluster_sync()


def test_plugin_hooks_see_lifecycle_events() -> None:
    from par.hookspecs import hookimpl
    from par.plugins import plugins

    seen: list[str] = []

    class Watcher:
        @hookimpl
        def par_launcher_event(self, event: dict) -> None:
            seen.append(f"{event['kind']}:{event['event']}")

    pm = plugins().pm
    pm.register(Watcher(), name="watcher")
    try:
        with par.Cluster(n=1):
            pass
    finally:
        pm.unregister(name="watcher")
    assert seen[:4] == [
        "controller:starting",
        "controller:running",
        "engines:starting",
        "engines:running",
    ]
    assert seen[-2:] == ["engines:stopped", "controller:stopped"]


def test_a_launcher_hands_its_events_to_its_context(tmp_path: Path) -> None:
    """emit writes events.jsonl and calls the context's on_event: a launcher reaches no
    plugin manager itself (a cluster's context hands the events to the plugins)."""
    seen: list[dict] = []
    context = LaunchContext("ev", tmp_path, tmp_path / "connection.json", on_event=seen.append)
    EngineSetLauncher(context, n=2).emit("spawned", pids=[1, 2])
    assert [(e["kind"], e["event"], e["pids"]) for e in seen] == [("engines", "spawned", [1, 2])]
    assert read_events(tmp_path) == seen


def test_the_plugin_contract_is_one_module() -> None:
    import par.hookspecs as spec

    assert sys.modules["par.hookspecs"] is spec
    hooks = [name for name in dir(spec) if name.startswith("par_")]
    assert hooks == ["par_launcher_event", "par_register_launchers"]
    assert all(getattr(spec, h).__doc__ for h in hooks)


def test_register_launcher_makes_a_class_usable_in_this_process_only() -> None:
    from par.plugins import plugins, register_launcher, reset
    from par_launcher_local import LocalEngineSetLauncher

    class HereEngines(LocalEngineSetLauncher):
        PLUGIN_NAME = "here"

    register_launcher(HereEngines)
    try:
        with par.Cluster(n=1, engines="here") as rc:
            assert rc[:].apply_sync(lambda: "here") == ["here"]
        rows = [(kind, i.cls.PLUGIN_NAME, i.package) for kind, i in plugins().launchers()]
        assert ("engines", "here", "(this process)") in rows
    finally:
        reset()
    listing = subprocess.run(par_cli("launchers"), capture_output=True, text=True, timeout=60)
    assert "here" not in listing.stdout.split()


def test_launcher_names_are_case_insensitive() -> None:
    with par.Cluster(n=1, engines="Local", controller="LOCAL") as rc:
        rc.wait_for_engines(1, timeout=30)
        assert rc[:].apply_sync(lambda: 6 * 7) == [42]
