"""With ``--db sqlite`` every finished task's status and result reach the database,
whatever the controller's memory bounds; a result the controller does not have is an
error at once, never a wait."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import par
import pytest

from ..conftest import par_cli, wait_for_file


class Controller:
    """A controller process and one engine, on a connection file of their own."""

    def __init__(self, conn: Path, args: tuple[str, ...]) -> None:
        self.conn, self.args = conn, args
        self.proc = self._start()
        wait_for_file(conn)
        self.engine = subprocess.Popen(
            [sys.executable, "-m", "par.engine", "--file", str(conn)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _start(self, *extra: str) -> subprocess.Popen[bytes]:
        cmd = par_cli("controller", "--cluster-id", "durable", "--file", str(self.conn))
        return subprocess.Popen(
            [*cmd, *self.args, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def crash_and_restore(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = self._start("--restore")

    def client(self) -> par.Client:
        """A new client: it holds no result of its own, so it asks the controller."""
        return par.Client(self.conn, timeout=20)

    def stop(self) -> None:
        for proc in (self.engine, self.proc):
            proc.terminate()
            proc.wait(timeout=15)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[Callable[..., Controller]]:
    started: list[Controller] = []

    def start(*args: str) -> Controller:
        started.append(Controller(tmp_path / "conn.json", args))
        return started[-1]

    yield start
    for ctl in started:
        ctl.stop()


def test_tasks_finishing_after_memory_let_their_records_go_reach_the_database(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    db = tmp_path / "records.sqlite"
    ctl = controller("--db", "sqlite", "--db-file", str(db), "--max-records", "20")
    with ctl.client() as rc:
        rc.wait_for_engines(1, timeout=60)
        lv = rc.load_balanced_view()
        ars = [lv.apply_async(lambda i=i: i * i) for i in range(200)]  # most culled pending
        assert [ar.get(timeout=60) for ar in ars] == [i * i for i in range(200)]
        ids = [ar.msg_ids[0] for ar in ars]
    with ctl.client() as other:
        assert other.get_result(ids[0]).get(timeout=30) == 0
        found = other.db_query({"msg_id": {"$in": ids}}, keys=["status"])
        assert sorted(r["status"] for r in found) == ["ok"] * 200
    ctl.crash_and_restore()
    with ctl.client() as other:
        assert other.get_result(ids[1], block=True) == 1
        found = other.db_query({"msg_id": {"$in": ids}}, keys=["status"])
        assert sorted(r["status"] for r in found) == ["ok"] * 200


def test_a_result_larger_than_the_memory_bound_reaches_the_database(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    db = tmp_path / "records.sqlite"
    ctl = controller("--db", "sqlite", "--db-file", str(db), "--max-record-bytes", "10000")
    with ctl.client() as rc:
        rc.wait_for_engines(1, timeout=60)
        ar = rc.load_balanced_view().apply_async(lambda: b"r" * 50_000)
        ar.get(timeout=30)
        mid = ar.msg_ids[0]
    with ctl.client() as other:
        assert other.get_result(mid, block=True) == b"r" * 50_000


def test_a_result_the_controller_did_not_keep_is_an_error_not_a_wait(
    controller: Callable[..., Controller],
) -> None:
    ctl = controller("--max-record-bytes", "10000")  # in memory: a larger result is not kept
    with ctl.client() as rc:
        rc.wait_for_engines(1, timeout=60)
        ar = rc.load_balanced_view().apply_async(lambda: b"r" * 50_000)
        ar.get(timeout=30)
        mid = ar.msg_ids[0]
    with ctl.client() as other, pytest.raises(KeyError, match="no result of message"):
        other.get_result(mid, block=False)


def test_a_database_outside_the_cluster_folder_is_readable_only_by_its_owner(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    db = tmp_path / "elsewhere" / "records.sqlite"
    db.parent.mkdir()
    old = os.umask(0o022)  # a common umask, which the controller inherits
    try:
        ctl = controller("--db", "sqlite", "--db-file", str(db))
    finally:
        os.umask(old)
    with ctl.client() as rc:
        rc.wait_for_engines(1, timeout=60)
        rc.load_balanced_view().apply_async(lambda: "secret").get(timeout=30)
    written = list(db.parent.iterdir())
    assert {p.name for p in written} >= {"records.sqlite", "records.sqlite-wal"}
    assert {p.name: p.stat().st_mode & 0o777 for p in written} == {p.name: 0o600 for p in written}


@pytest.mark.parametrize("kind", ["missing folder", "not a database"])
def test_a_database_that_cannot_be_opened_is_a_one_line_error(kind: str, tmp_path: Path) -> None:
    db = tmp_path / "missing" / "records.sqlite"
    if kind == "not a database":
        db = tmp_path / "records.sqlite"
        db.write_bytes(b"this is not SQLite" * 100)
    cmd = par_cli("controller", "--file", str(tmp_path / "c.json"), "--db", "sqlite")
    result = subprocess.run(
        [*cmd, "--db-file", str(db)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"par controller: error: cannot open the record database {db}: "
        + ("No such file or directory" if kind == "missing folder" else "file is not a database")
    ]


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_a_result_reaches_its_client_only_once_it_is_in_the_database(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    db, running, go = tmp_path / "records.sqlite", tmp_path / "running", tmp_path / "go"

    def task() -> str:
        running.touch()
        wait_for(go)
        return "durable"

    ctl = controller("--db", "sqlite", "--db-file", str(db))
    with ctl.client() as rc:
        rc.wait_for_engines(1, timeout=60)
        ar = rc.load_balanced_view().apply_async(task)
        wait_for(running)
        time.sleep(0.3)  # the controller has written the task's request meanwhile
        writer = sqlite3.connect(db)
        writer.execute("BEGIN IMMEDIATE")  # the database cannot be written for now
        go.touch()
        time.sleep(1)  # the task's reply reaches the controller, which cannot write it
        assert not ar.ready()
        writer.rollback()
        assert ar.get(timeout=30) == "durable"
        (status,) = writer.execute(
            "SELECT status FROM records WHERE msg_id = ? AND result IS NOT NULL", ar.msg_ids
        ).fetchone()
        assert status == "ok"
        writer.close()


def test_tasks_aborted_together_reach_their_client_only_once_in_the_database(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    """An abort's failure batches (the ids of the tasks it aborted, and the error once) wait
    with the pass's replies until the records are written, as a reply does."""
    db, running, go = tmp_path / "records.sqlite", tmp_path / "running", tmp_path / "go"

    def task() -> None:
        running.touch()
        wait_for(go)

    ctl = controller("--db", "sqlite", "--db-file", str(db), "--hwm", "1")
    with ctl.client() as rc:
        rc.wait_for_engines(1, timeout=60)
        lv = rc.load_balanced_view()
        busy = lv.apply_async(task)
        wait_for(running)
        queued = lv.map_async(str, range(50))
        time.sleep(0.3)  # the controller has queued them and written their requests
        writer = sqlite3.connect(db)
        writer.execute("BEGIN IMMEDIATE")  # the database cannot be written for now
        try:
            rc.abort(queued)
            time.sleep(1)
            assert not queued.ready()
        finally:
            writer.rollback()
        with pytest.raises(par.CompositeError):
            queued.get(timeout=30)
        assert {md["status"] for md in queued.metadata} == {"aborted"}
        (aborted,) = writer.execute(
            "SELECT COUNT(*) FROM records WHERE status = 'aborted'"
        ).fetchone()
        assert aborted == 50
        writer.close()
        go.touch()
        assert busy.get(timeout=30) is None


def test_a_database_locked_for_longer_than_sqlite_waits_holds_replies_not_the_controller(
    controller: Callable[..., Controller], tmp_path: Path
) -> None:
    """SQLite gives up on a lock after 5 s: the controller once died of it, losing what it
    held. Now the replies wait for the database while the controller keeps serving."""
    db = tmp_path / "records.sqlite"
    ctl = controller("--db", "sqlite", "--db-file", str(db))
    with ctl.client() as rc:
        rc.wait_for_engines(1, timeout=60)
        lv = rc.load_balanced_view()
        lv.apply_async(os.getpid).get(timeout=30)
        writer = sqlite3.connect(db)
        writer.execute("BEGIN IMMEDIATE")
        ars = [lv.apply_async(pow, i, 2) for i in range(20)]
        try:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:  # the controller serves meanwhile
                status = rc.queue_status()
                time.sleep(0.5)
            assert status[0]["completed"] == 21 and status["unassigned"] == 0
            assert not any(ar.ready() for ar in ars)
        finally:
            writer.rollback()
        assert [ar.get(timeout=30) for ar in ars] == [i * i for i in range(20)]
        (written,) = writer.execute(
            "SELECT COUNT(*) FROM records WHERE status = 'ok' AND result IS NOT NULL"
        ).fetchone()
        assert written == 21
        writer.close()
    assert ctl.proc.poll() is None
