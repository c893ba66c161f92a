"""A recorded cluster: the status replies and events a monitor saw, at fixed times."""

from __future__ import annotations

from typing import Any

from par_tui.state import ClusterState

T0 = 1_700_000_000.0  # the moment the snapshots show
HOSTS = ["node01", "node01", "node02", "node02"]

TRACEBACK = """\
Traceback (most recent call last):
  File "/home/ana/analysis/pipeline.py", line 41, in load_chunk
    frame = read_frame(path, columns=COLUMNS)
            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/home/ana/analysis/io.py", line 12, in read_frame
    with open(path, "rb") as f:
         ^^^^^^^^^^^^^^^^
FileNotFoundError: [Errno 2] No such file or directory: '/scratch/run7/chunk-0042.parquet'"""


def _engine(i: int, completed: int, failed: int, task: str | None, cpu: float) -> dict[str, Any]:
    return {
        "id": i,
        "uuid": f"{i:032x}",
        "pid": 41200 + i,
        "host": HOSTS[i],
        "state": "up",
        "registered": T0 - 300,
        "queue": 2 if task else 0,
        "completed": completed,
        "failed": failed,
        "info": {"python": "/usr/bin/python3", "cwd": "/home/ana"},
        "launcher": "ssh" if i >= 2 else "local",
        "stats": {"cpu": cpu, "rss": (52 + 9 * i) * 1024 * 1024, "task": task},
        "heartbeat_age": 0.4 + 0.1 * i,
    }


def _notice(i: int, engine: int, start: float, end: float, st: str = "ok") -> dict[str, Any]:
    n: dict[str, Any] = {"id": f"{i:08x}{'0' * 24}", "e": engine, "st": st, "m": "apply"}
    n.update(ts=start, tc=end, q="t", sub=start - 0.01)
    if st == "error":
        n.update(en="FileNotFoundError", tb=TRACEBACK)
        n["ev"] = "[Errno 2] No such file or directory: '/scratch/run7/chunk-0042.parquet'"
    return n


def _launcher_event(
    at: float, launcher: str, kind: str, event: str, **details: Any
) -> dict[str, Any]:
    """One line of ``events.jsonl``, as ``par.launcher.Launcher.emit`` writes it."""
    return dict(
        time=at, cluster_id="analysis", launcher=launcher, kind=kind, event=event, **details
    )


# The cluster's start: the first ssh engine set failed (a host refused) and was started again.
LAUNCHER_EVENTS = [
    _launcher_event(T0 - 313.0, "local", "controller", "starting"),
    _launcher_event(T0 - 312.4, "local", "controller", "running"),
    _launcher_event(T0 - 312.3, "local", "engines", "starting", engine_set="1699999687-a1b2", n=2),
    _launcher_event(T0 - 311.9, "local", "engines", "running", engine_set="1699999687-a1b2", n=2),
    _launcher_event(T0 - 311.8, "ssh", "engines", "starting", engine_set="1699999688-c3d4", n=2),
    _launcher_event(
        T0 - 306.0,
        "ssh",
        "engines",
        "failed",
        engine_set="1699999688-c3d4",
        error="ssh node03: connect to host node03 port 22: Connection refused (exit 255)",
    ),
    _launcher_event(T0 - 305.0, "ssh", "engines", "starting", engine_set="1699999695-e5f6", n=2),
    _launcher_event(T0 - 301.2, "ssh", "engines", "running", engine_set="1699999695-e5f6", n=2),
]


def recorded_state() -> ClusterState:
    """Four engines on two hosts after a minute of work: one idle, one straggling, one failing."""
    state = ClusterState("analysis")
    state.on_connected(
        {
            "controller_url": "tcp://10.0.0.5:50123",
            "launchers": "controller local, engines local (1 set), ssh (1 set)",
        },
        T0 - 60,
    )
    notices = []
    k = 0
    # Engine 1 took a long task 40 s ago and is still on it: a straggler. Engine 3 is idle.
    for engine, step, until in ((0, 0.5, T0 - 1), (1, 0.7, T0 - 41), (2, 1.3, T0 - 1)):
        t = T0 - 58.0
        while t < until:
            failed = engine == 2 and k % 9 == 4
            notices.append(_notice(k, engine, t, t + step * 0.9, "error" if failed else "ok"))
            t += step
            k += 1
    notices.sort(key=lambda n: n["tc"])
    state.on_event("tasks", {"tasks": notices}, T0 - 1)
    failed = sum(1 for n in notices if n["st"] == "error")
    state.on_event(
        "stream", {"id": "s", "e": 0, "n": "stdout", "d": "loading chunk 0040\n"}, T0 - 3
    )
    state.on_event(
        "stream", {"id": "s", "e": 0, "n": "stdout", "d": "loading chunk 0041\nmerged"}, T0 - 2
    )
    state.on_event("stream", {"id": "s", "e": 0, "n": "stdout", "d": " 12 frames\n"}, T0 - 2)
    state.on_event(
        "stream", {"id": "s", "e": 0, "n": "stderr", "d": "warning: column 'x7' is empty\n"}, T0 - 1
    )
    status = {
        "cluster_id": "analysis",
        "uptime": 312.0,
        "queued": 37,
        "pending": 40,
        "counts": {"submitted": 280, "completed": len(notices) - failed, "failed": failed},
        "engines": [
            _engine(0, 0, 0, None, 0.0),
            _engine(1, 0, 0, "dd44ee55ff66", 99.7),
            _engine(2, 0, 0, None, 0.0),
            _engine(3, 0, 0, None, 0.0),
        ],
    }
    state.on_status(status, T0 - 40)
    for e in status["engines"]:
        done = [n for n in notices if n["e"] == e["id"]]
        e["failed"] = sum(1 for n in done if n["st"] == "error")
        e["completed"] = len(done) - e["failed"]
    status["engines"][0]["stats"].update(task="bb11bb22cc33", cpu=98.5)
    status["engines"][2]["stats"].update(task="0077889900aa", cpu=97.2)
    state.on_status(status, T0)
    state.on_launcher_events(LAUNCHER_EVENTS)
    return state
