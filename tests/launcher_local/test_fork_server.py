"""Engines forked from a fork server (the local launcher's default where it can fork).

Stopping, signals, killed engines and ``par stop`` from another process are
checked by the conformance suite with fork on and off
(tests/plugins/test_local_conformance.py); these tests check what is
particular to forking: each engine is a process of its own in every respect
that matters, preloaded modules, the server's lifetime, and failures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import par
import psutil
import pytest
from par.cluster import Cluster
from par.errors import ClusterError
from par.launcher import LauncherError
from par.testing import engine_pids, wait_gone

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture(scope="module")
def forked() -> Iterator[tuple[Cluster, par.Client]]:
    """Three forked engines whose server preloaded NumPy's random module (its global
    generator's state is copied by a fork)."""
    cluster = par.Cluster(n=3, fork=True, preload="numpy.random")
    rc = cluster.start_and_connect_sync()
    try:
        yield cluster, rc
    finally:
        cluster.stop_cluster_sync()


def _engine_set(cluster: Cluster):  # the one local engine set of a cluster
    (es,) = cluster.engines.values()
    return es


def test_each_engine_is_a_child_of_the_server_in_a_session_of_its_own(forked) -> None:
    cluster, rc = forked
    es = _engine_set(cluster)
    pids = rc[:].apply_sync(os.getpid)
    assert sorted(pids) == sorted(engine_pids(rc).values()) == sorted(p.pid for p in es.processes)
    assert es.server is not None and es.server.pid not in pids
    assert all(psutil.Process(pid).ppid() == es.server.pid for pid in pids)
    assert all(os.getsid(pid) == pid for pid in pids)  # a session (and group) of its own
    marks = rc[:].apply_sync(lambda: os.environ["PAR_LAUNCH_MARK"])  # what their tasks inherit
    recorded = {p.pid: p.mark for p in es.processes}
    assert marks == [recorded[pid] for pid in pids] and len(set(marks)) == 3


def test_engines_share_the_preloaded_modules_but_not_their_random_state(forked) -> None:
    _, rc = forked

    def draws() -> tuple[bool, float, float]:
        import random
        import sys

        loaded = "numpy.random" in sys.modules  # preloaded: imported before any task ran
        import numpy

        return loaded, random.random(), float(numpy.random.random())

    results = rc[:].apply_sync(draws)
    assert all(loaded for loaded, _, _ in results)
    assert len({r for _, r, _ in results}) == 3
    assert len({r for _, _, r in results}) == 3


def test_each_engine_writes_its_own_log(forked) -> None:
    cluster, rc = forked
    es = _engine_set(cluster)
    rc[:].apply_sync(lambda: print("to the log", flush=True, file=sys.__stdout__))
    for eid, pid in engine_pids(rc).items():
        (ref,) = [p for p in es.processes if p.pid == pid]
        text = Path(ref.log).read_text()
        assert f"registered as engine {eid}" in text and "to the log" in text
        assert text.count("registered as engine") == 1


def test_signals_for_the_engines_do_not_reach_the_server(forked) -> None:
    cluster, rc = forked
    server = _engine_set(cluster).server
    assert server is not None
    pids = rc[:].apply_sync(os.getpid)
    cluster.signal_engines_sync(signal.SIGINT)
    time.sleep(0.5)
    assert server.alive() and rc[:].apply_sync(os.getpid) == pids


def test_a_killed_engine_is_described_by_a_launcher_restored_elsewhere(forked) -> None:
    cluster, rc = forked
    pid = engine_pids(rc)[2]
    os.kill(pid, signal.SIGKILL)
    assert wait_gone([pid]) == []
    restored = Cluster.from_file(cluster.cluster_id)  # as `par stop` in another process
    report = next(iter(restored.engines.values())).describe_exit(pid)
    assert report is not None and "was killed by signal 9 (SIGKILL)" in report


def test_restarted_engines_come_from_a_new_server_and_the_old_one_exits(forked) -> None:
    cluster, rc = forked
    old = _engine_set(cluster).server
    assert old is not None
    cluster.restart_engines_sync()
    new = _engine_set(cluster).server
    assert new is not None and new.pid != old.pid
    assert wait_gone([old.pid]) == []
    deadline = time.monotonic() + 60
    while sorted(rc.ids) != [3, 4, 5] and time.monotonic() < deadline:  # new engines, new ids
        time.sleep(0.1)
    assert all(psutil.Process(p).ppid() == new.pid for p in rc[[3, 4, 5]].apply_sync(os.getpid))


def test_sigterm_to_the_server_stops_its_engines_and_it_exits_with_them(forked) -> None:
    cluster, _ = forked
    es = _engine_set(cluster)
    assert es.server is not None
    pids = [p.pid for p in es.processes]
    os.kill(es.server.pid, signal.SIGTERM)
    assert wait_gone([*pids, es.server.pid]) == []
    assert not es.running()
    assert all("exited with status 0" in (es.describe_exit(pid) or "") for pid in pids)


def test_spawned_engines_import_the_preload_modules_too() -> None:
    with par.Cluster(n=1, fork=False, preload="colorsys") as rc:
        assert rc[0].apply_sync(lambda: "colorsys" in __import__("sys").modules)


@pytest.mark.parametrize("fork", [True, False])
def test_a_preload_module_that_cannot_be_imported_fails_the_start_naming_it(fork) -> None:
    cluster = par.Cluster(n=2, fork=fork, preload="no_such_module_here")
    with pytest.raises((LauncherError, ClusterError)) as info:
        cluster.start_and_connect_sync()
    assert "cannot preload 'no_such_module_here'" in str(info.value)
    assert cluster.controller is not None and not cluster.controller.running()


def test_a_preload_value_that_is_not_module_names_is_refused_before_anything_starts() -> None:
    cluster = par.Cluster(n=1, preload="numpy pandas")
    with pytest.raises(ValueError, match="'numpy pandas' is not a module name"):
        cluster.start_cluster_sync()
    assert cluster.controller is None
    started = subprocess.run(
        [sys.executable, "-m", "par", "start", "-n", "1", "--preload", "numpy pandas"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 1
    assert "'numpy pandas' is not a module name" in started.stderr


def test_forking_many_engines_records_them_now_and_then_not_every_wave(monkeypatch) -> None:
    """Each record of a cluster writes every engine started so far, so recording them
    each wave made starting 1,000 engines quadratic: while a fork server forks, the
    launcher records them at most every SAVE_EVERY seconds, and once they all run."""
    from par import paths
    from par_launcher_local import LocalEngineSetLauncher

    cluster = par.Cluster(n=96, fork=True)
    record = paths.cluster_file(cluster.cluster_id)
    writes: list[Path] = []
    write = paths.write_private_json

    def counting(path: Path, data: object) -> None:
        writes.append(path)
        write(path, data)

    monkeypatch.setattr(paths, "write_private_json", counting)
    started = time.monotonic()
    rc = cluster.start_and_connect_sync()
    try:
        took = time.monotonic() - started
        assert len(_engine_set(cluster).processes) == 96
        # the controller's records, the set's before it starts and once it runs, the
        # server's, and one each SAVE_EVERY while forking (a wave's is 4 engines a core)
        assert writes.count(record) <= 5 + took / LocalEngineSetLauncher.SAVE_EVERY
        rc.wait_for_engines(96, timeout=120)
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def test_engines_that_get_sigterm_from_the_server_too_still_stop_at_once() -> None:
    """``par stop`` and Ctrl-C signal each engine and the fork server, which passes its
    SIGTERM on: one that came while an engine handled the first left it waiting for ever
    on a lock its own handler held, until killed 10 s later. Repeated: the two must meet."""
    for _ in range(8):
        cluster = par.Cluster(n=2, fork=True)
        rc = cluster.start_and_connect_sync()
        try:
            es = _engine_set(cluster)
            assert es.server is not None
            pids = [p.pid for p in es.processes] + [es.server.pid]
            for pid in pids:
                os.kill(pid, signal.SIGTERM)
            assert wait_gone(pids, timeout=5) == []
        finally:
            rc.close()
            cluster.stop_cluster_sync()
