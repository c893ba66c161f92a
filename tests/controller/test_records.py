"""The hub's record store: what it keeps of requests and replies, and its byte bound."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from par.controller.records import EARLY_TASKS, Record, RecordStore, Shared, SQLiteRecordStore


def task(mid: str, payload: list[bytes], shared: Shared | None = None) -> Record:
    return Record(mid, "client", "task", "apply", 1.0, header={"t": "apply", "f": "digest"},
                  payload=payload, buffers=[], shared=shared)  # fmt: skip


def reply(mid: str, **extra: object) -> dict[str, object]:
    return {"t": "reply", "id": mid, "e": 0, "st": "ok", "ts": 2.0, "tc": 3.0, **extra}


def test_frames_shared_by_a_batch_are_counted_once() -> None:
    store = RecordStore(max_records=100, max_bytes=100_000)
    function = b"f" * 1000
    shared = Shared.of([function])
    for i in range(3):
        store.add(task(f"t{i}", [function, bytes(100)], shared))
    assert store.nbytes == 1000 + 3 * 100
    store.remove("t0")
    store.remove("t1")
    assert store.nbytes == 1000 + 100  # the function stays charged while one record holds it
    store.remove("t2")
    assert store.nbytes == 0


def test_requests_results_and_output_stay_within_the_byte_bound() -> None:
    store = RecordStore(max_records=1000, max_bytes=5000)
    for i in range(20):
        store.add(task(f"t{i}", [bytes(600)]))
        store.finish(f"t{i}", reply(f"t{i}", o="x" * 100), [bytes(200)])
        store.flush()  # as the controller does after each pass
        assert store.nbytes <= 5000
    assert "t0" not in store.records and "t19" in store.records  # oldest culled first
    kept = store.records["t19"]
    assert kept.stdout == "x" * 100 and kept.payload == [bytes(600)]
    for mid in list(store.records):
        store.remove(mid)
    assert store.nbytes == 0  # nothing was counted twice or lost


def test_a_request_larger_than_the_bound_is_dropped_but_the_record_stays() -> None:
    store = RecordStore(max_records=10, max_bytes=1000)
    store.add(task("big", [bytes(2000)]))
    rec = store.get("big")
    assert rec is not None and rec.payload is None and rec.header is not None
    assert store.nbytes == 0


def test_a_second_reply_replaces_the_first_without_leaking() -> None:
    store = RecordStore()
    store.add(task("t", [b"x"]))
    store.finish("t", reply("t"), [bytes(500)])
    store.flush()
    once = store.nbytes
    assert once >= 500
    store.finish("t", reply("t"), [bytes(500)])
    store.flush()
    assert store.nbytes == once


def test_a_reply_is_stored_after_its_pass_and_its_status_at_once() -> None:
    """finish() sets the status now (dependencies read it in the same pass); the frames
    are stored at the next read or flush, once the reply went on."""
    store = RecordStore()
    store.add(task("t", [b"x"]))
    store.finish("t", reply("t", st="error"), [b"content"])
    assert store.records["t"].status == "error" and store.records["t"].result is None
    rec = store.get("t")
    assert rec is not None and rec.result is not None and rec.result[1:] == [b"content"]


def test_a_record_culled_before_its_reply_is_stored_is_not_charged() -> None:
    store = RecordStore(max_records=100, max_bytes=1000)
    store.add(task("t", [bytes(100)]))
    store.add(task("u", [bytes(100)]))
    store.finish("t", reply("t"), [bytes(300)])
    store.add_output("u", "stdout", "x" * 900)  # over the bound: the oldest, t, goes
    store.flush()
    assert "t" not in store.records and "u" in store.records
    store.remove("u")
    assert store.nbytes == 0  # t's reply was never charged, nor left behind


def test_streamed_output_comes_before_the_rest() -> None:
    store = RecordStore()
    store.add(task("t", [b"x"]))
    store.add_output("t", "stdout", "streamed\n")
    store.add_output("t", "stderr", "warn\n")
    store.finish("t", reply("t", o="rest\n", ns=2), [b"result"])
    rec = store.get("t")
    assert rec is not None
    assert rec.value("stdout") == "streamed\nrest\n" and rec.value("stderr") == "warn\n"
    header, payload, _ = rec.reply() or ({}, [], [])
    assert header["o"] == "streamed\nrest\n" and "ns" not in header and payload == [b"result"]


def test_output_that_comes_before_its_record_is_kept_for_it(tmp_path: Path) -> None:
    """A direct task's output reaches the hub from the control relay and its request's copy
    from the direct relay, in either order: output first is not lost, in memory or on disk."""
    for store in (RecordStore(), SQLiteRecordStore(str(tmp_path / "records.sqlite"))):
        store.add_output("t", "stdout", "early\n")
        store.add_output("t", "stderr", "warn\n")
        store.add(task("t", [b"x"]))
        store.finish("t", reply("t", o="rest\n", ns=2), [b"result"])
        store.flush()
        rec = store.get("t")
        assert rec is not None
        assert rec.value("stdout") == "early\nrest\n" and rec.value("stderr") == "warn\n"


def test_early_output_of_tasks_never_recorded_is_bounded() -> None:
    store = RecordStore()
    for i in range(EARLY_TASKS + 10):
        store.add_output(f"gone-{i}", "stdout", "x")
    store.add(task("gone-0", [b"x"]))  # dropped: the oldest
    store.add(task(f"gone-{EARLY_TASKS + 9}", [b"x"]))
    assert store.get("gone-0").value("stdout") == ""  # type: ignore[union-attr]
    assert store.get(f"gone-{EARLY_TASKS + 9}").value("stdout") == "x"  # type: ignore[union-attr]


def test_sqlite_keeps_requests_across_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "records.sqlite")
    store = SQLiteRecordStore(path)
    store.add(task("t", [b"function", b"arguments"]))
    store.finish("t", reply("t", o="out\n"), [b"result"])
    original = store.get("t")
    assert original is not None
    store.mark_resubmitted(original, "t2")
    store.close()
    again = SQLiteRecordStore(path)
    rec = again.get("t")
    assert rec is not None
    assert rec.payload == [b"function", b"arguments"]
    assert rec.header == {"t": "apply", "f": "digest"}
    assert rec.resubmitted == "t2" and rec.stdout == "out\n"
    assert rec.value("result_content") == {"status": "ok"}
    again.close()


def test_sqlite_adds_columns_to_a_file_an_older_par_wrote(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE records (msg_id TEXT PRIMARY KEY, client, queue, method, submitted, "
        "engine_id, started, completed, status, ename, label, result BLOB)"
    )
    db.execute("INSERT INTO records (msg_id, status) VALUES ('old', 'ok')")
    db.commit()
    db.close()
    store = SQLiteRecordStore(str(path))
    store.add(task("new", [b"x"]))
    assert sorted(r.msg_id for r in store.all()) == ["new", "old"]
    store.close()


def reopened(path: str, mid: str) -> Record:
    """A record as a restored controller reads it from the file."""
    store = SQLiteRecordStore(path)
    rec = store.get(mid)
    store.close()
    assert rec is not None
    return rec


def test_sqlite_writes_a_task_that_finished_after_memory_let_it_go(tmp_path: Path) -> None:
    path = str(tmp_path / "records.sqlite")
    store = SQLiteRecordStore(path, max_records=2)
    for mid in ("t0", "t1", "t2", "t3"):
        store.add(task(mid, [b"x"]))
    store.flush()
    assert "t0" not in store.records  # culled while its task runs
    store.assign("t0", 5, b"engine-5")
    store.add_output("t0", "stdout", "streamed\n")
    store.finish("t0", reply("t0", e=5, o="rest\n"), [b"result"])
    store.flush()
    store.close()
    rec = reopened(path, "t0")
    assert (rec.status, rec.engine_id, rec.engine_uuid) == ("ok", 5, b"engine-5")
    assert rec.stdout == "streamed\nrest\n" and rec.payload == [b"x"]
    header, payload, _ = rec.reply() or ({}, [], [])
    assert payload == [b"result"] and header["o"] == "streamed\nrest\n"


def test_sqlite_writes_a_record_culled_before_its_first_write(tmp_path: Path) -> None:
    """Culled in the pass it was added, finished in the same pass: one row, whole."""
    path = str(tmp_path / "records.sqlite")
    store = SQLiteRecordStore(path, max_records=1)
    store.add(task("t", [b"x"]))
    store.add(task("u", [b"y"]))
    store.finish("t", reply("t"), [b"result"])
    store.close()
    rec = reopened(path, "t")
    assert rec.status == "ok" and rec.payload == [b"x"] and rec.result is not None


def test_sqlite_writes_a_result_larger_than_the_memory_bound(tmp_path: Path) -> None:
    path = str(tmp_path / "records.sqlite")
    store = SQLiteRecordStore(path, max_bytes=1000)
    store.add(task("big", [b"x"]))
    store.finish("big", reply("big"), [bytes(5000)])
    rec = store.get("big")  # from disk: memory could not keep the result
    assert rec is not None and rec.reply() is not None
    assert store.nbytes == 0
    store.close()
    assert (reopened(path, "big").reply() or ({}, [], []))[1] == [bytes(5000)]


def test_sqlite_forgets_changes_of_a_removed_record(tmp_path: Path) -> None:
    path = str(tmp_path / "records.sqlite")
    store = SQLiteRecordStore(path, max_records=1)
    store.add(task("t", [b"x"]))
    store.add(task("u", [b"y"]))
    store.flush()
    store.remove("t")
    store.finish("t", reply("t"), [b"late"])
    store.close()
    again = SQLiteRecordStore(path)
    assert again.get("t") is None
    again.close()


def test_sqlite_writes_what_happens_to_a_record_after_its_row(tmp_path: Path) -> None:
    path = str(tmp_path / "records.sqlite")
    store = SQLiteRecordStore(path)
    store.add(task("t", [b"x"]))
    store.flush()  # the row is written; the record stays in memory
    store.assign("t", 1, b"engine-1")
    store.add_output("t", "stderr", "warn\n")
    store.flush()
    store.finish("t", reply("t", e=1, st="error", en="ValueError"), [b"content"])
    store.flush()
    rec = store.get("t")
    assert rec is not None
    store.mark_resubmitted(rec, "t2")
    store.close()
    rec = reopened(path, "t")
    assert (rec.status, rec.ename, rec.engine_id, rec.engine_uuid) == (
        "error", "ValueError", 1, b"engine-1"
    )  # fmt: skip
    assert (rec.stderr, rec.resubmitted, rec.payload) == ("warn\n", "t2", [b"x"])
    assert rec.result is not None and rec.result[1:] == [b"content"]
