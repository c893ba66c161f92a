"""A controller that dies: nothing hangs, and a restored controller picks everyone back up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import par
import psutil
import pytest
from par import paths


def start_controller(conn: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "par",
            "controller",
            "--cluster-id",
            "loss",
            "--file",
            str(conn),
            "--heartbeat",
            "0.3",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_dead_controller_fails_waiting_results_and_a_restored_one_resumes(
    tmp_path: Path,
) -> None:
    conn = tmp_path / "conn.json"
    ctl = start_controller(conn)
    engines = []
    try:
        rc = par.Client(conn, timeout=20, controller_timeout=3)
        engines = [
            subprocess.Popen(
                [sys.executable, "-m", "par.engine", "--file", str(conn)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        rc.wait_for_engines(2, timeout=30)
        ids_before = rc.ids
        ar = rc[0].apply_async(time.sleep, 6)  # the engine re-registers once this ends
        time.sleep(0.3)
        os.kill(ctl.pid, signal.SIGKILL)
        ctl.wait()
        t0 = time.monotonic()
        with pytest.raises(par.ControllerLost, match="restore"):
            ar.get(timeout=30)
        assert time.monotonic() - t0 < 10

        ctl = start_controller(conn, "--restore")
        deadline = time.monotonic() + 30
        while len(rc.ids) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rc.ids == ids_before
        assert rc[:].apply_sync(lambda: "back") == ["back", "back"]
        rc.close()
    finally:
        for proc in [*engines, ctl]:
            proc.terminate()
            proc.wait(timeout=15)


def test_restore_without_a_connection_file_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "par",
            "controller",
            "--restore",
            "--file",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "not found" in result.stderr


def test_with_sqlite_records_results_and_requests_survive_a_controller_crash(
    tmp_path: Path,
) -> None:
    conn = tmp_path / "conn.json"
    db = tmp_path / "records.sqlite"
    ctl = start_controller(conn, "--db", "sqlite", "--db-file", str(db))
    engine = None
    try:
        with par.Client(conn, timeout=20) as rc:
            engine = subprocess.Popen(
                [sys.executable, "-m", "par.engine", "--file", str(conn)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            rc.wait_for_engines(1, timeout=30)
            lv = rc.load_balanced_view(label="kept")
            ars = [lv.apply_async(lambda i=i: {"value": i}) for i in range(20)]
            rc.wait(ars, timeout=30)
            ids = [a.msg_ids[0] for a in ars]
            time.sleep(0.3)  # one loop pass writes them
        os.kill(ctl.pid, signal.SIGKILL)
        ctl.wait()
        ctl = start_controller(conn, "--db", "sqlite", "--db-file", str(db), "--restore")
        with par.Client(conn, timeout=20) as other:
            assert other.get_result(ids[7], block=True) == {"value": 7}
            found = other.db_query({"label": "kept"}, keys=["status"])
            assert {r["msg_id"] for r in found} == set(ids)
            assert all(r["status"] == "ok" for r in found)
            assert set(ids) <= set(other.hub_history())
            (rec,) = other.db_query({"msg_id": ids[3]}, keys=["buffers", "header", "queue"])
            assert len(rec["buffers"]) == 2 and rec["queue"] == "task"  # the request survived
            other.wait_for_engines(1, timeout=30)  # the engine comes back to the new controller
            again = other.resubmit(ids[3])
            assert again.get(timeout=30) == {"value": 3}
            (old,) = other.db_query({"msg_id": ids[3]}, keys=["resubmitted"])
            assert old["resubmitted"] == again.msg_ids[0]
    finally:
        for proc in (engine, ctl):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=15)
    assert db.stat().st_size > 0


def test_par_start_accepts_db_sqlite() -> None:
    from par import paths

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "par",
            "start",
            "-n",
            "1",
            "--daemonize",
            "--db",
            "sqlite",
            "--cluster-id",
            "withdb",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    try:
        with par.Client(cluster_id="withdb") as rc:
            rc.wait_for_engines(1, timeout=30)
            ar = rc[0].apply_async(lambda: "stored")
            assert ar.get(timeout=30) == "stored"
            time.sleep(0.3)
        assert (paths.cluster_dir("withdb") / "records.sqlite").exists()
    finally:
        subprocess.run([sys.executable, "-m", "par", "stop", "--cluster-id", "withdb"], timeout=60)


SUSPENDED_CLIENT = """
import json, sys, time, par
rc = par.Client(sys.argv[1], controller_timeout=2.0)
rc.wait_for_engines(2, timeout=30)
late = rc[:].apply_async(time.sleep, 6)  # still running at the first resume
print("stop me", flush=True)
sys.stdin.readline()  # resumed: nothing had arrived meanwhile
early = rc.load_balanced_view().map_async(time.sleep, [0.1] * 4)  # done while it is stopped
print("stop me", flush=True)
sys.stdin.readline()  # resumed: replies wait unread
out = {}
for name, ar in (("late", late), ("early", early)):
    try:
        ar.get(timeout=30)
        out[name] = "ok"
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out), flush=True)
"""


def test_a_client_suspended_longer_than_its_controller_timeout_gets_its_results(
    small_cluster,
) -> None:
    """Ctrl-Z and fg, a laptop lid, a debugger: the controller stayed healthy all along."""
    import json

    cluster, _ = small_cluster
    conn = str(paths.connection_file(cluster.cluster_id))
    proc = subprocess.Popen(
        [sys.executable, "-c", SUSPENDED_CLIENT, conn],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        for _ in range(2):
            assert proc.stdout.readline().strip() == "stop me"
            os.kill(proc.pid, signal.SIGSTOP)
            time.sleep(3)  # one and a half controller timeouts
            os.kill(proc.pid, signal.SIGCONT)
            proc.stdin.write("go\n")
            proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"late": "ok", "early": "ok"}
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
            proc.wait()


def _relays(ctl: subprocess.Popen[bytes], conn: Path) -> list[psutil.Process]:
    """The controller's relays, once it wrote its connection file; each listens on the
    public ports of its kind of engine connection."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if conn.exists() and json.loads(conn.read_text())["controller_pid"] == ctl.pid:
            break
        time.sleep(0.1)
    info = json.loads(conn.read_text())
    relays = {r.cmdline()[-1]: r for r in psutil.Process(ctl.pid).children()}
    assert sorted(relays) == ["control", "direct"]
    for kind, names in (("control", ["control"]), ("direct", ["direct", "engine_direct"])):
        held = {c.laddr.port for c in relays[kind].net_connections("tcp") if c.status == "LISTEN"}
        assert held == {int(info[f"{name}_url"].rsplit(":", 1)[1]) for name in names}
    return list(relays.values())


def test_relays_go_with_their_controller_and_a_restored_one_binds_their_ports(
    tmp_path: Path,
) -> None:
    """The child processes that hold engines' control and direct connections end when their
    controller is killed, or stops; a restored controller's relays listen on the same ports."""
    conn = tmp_path / "conn.json"
    ctl = start_controller(conn)
    try:
        relays = _relays(ctl, conn)
        before = json.loads(conn.read_text())
        os.kill(ctl.pid, signal.SIGKILL)
        ctl.wait()
        _, alive = psutil.wait_procs(relays, timeout=10)
        assert alive == []

        ctl = start_controller(conn, "--restore")
        relays = _relays(ctl, conn)
        after = json.loads(conn.read_text())
        assert {k: v for k, v in after.items() if k.endswith("_url")} == {
            k: v for k, v in before.items() if k.endswith("_url")
        }
        ctl.terminate()
        assert ctl.wait(timeout=15) == 0
        _, alive = psutil.wait_procs(relays, timeout=10)
        assert alive == []
    finally:
        ctl.kill()
        ctl.wait()
