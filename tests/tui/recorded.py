"""A recorded cluster: the status replies and events a monitor saw, at fixed times.

The finished tasks go through the controller's own :class:`par.controller.feed.Feed`, so
the monitor is fed exactly what a controller would send it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from par import protocol
from par.controller.feed import Feed
from par_tui.state import ClusterState

T0 = 1_700_000_000.0  # the moment the snapshots show
HOSTS = ["node01", "node01", "node02", "node02"]
CLIENTS = ["3fa94e1c0b7d2a65", "77c01d9e5a4b3f21"]  # two clients' message id prefixes

TRACEBACK = """\
Traceback (most recent call last):
  File "/home/ana/analysis/pipeline.py", line 41, in load_chunk
    frame = read_frame(path, columns=COLUMNS)
            ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/home/ana/analysis/io.py", line 12, in read_frame
    with open(path, "rb") as f:
         ^^^^^^^^^^^^^^^^
FileNotFoundError: [Errno 2] No such file or directory: '/scratch/run7/{label}.parquet'"""


def _engine(i: int) -> dict[str, Any]:
    """Engine ``i`` as the controller's status describes it, idle."""
    return {
        "id": i,
        "uuid": f"{i:032x}",
        "pid": 41200 + i,
        "host": HOSTS[i],
        "state": "up",
        "registered": T0 - 300,
        "queue": 0,
        "completed": 0,
        "failed": 0,
        "info": {"python": "/usr/bin/python3", "cwd": "/home/ana"},
        "launcher": "ssh" if i >= 2 else "local",
        "stats": {"cpu": 0.0, "rss": (52 + 9 * i) * 1024 * 1024, "task": None},
        "heartbeat_age": 0.4 + 0.1 * i,
    }


def task_id(i: int, client: int = 0) -> str:
    """The message id of a client's i-th task, as par's clients make them."""
    return f"{CLIENTS[client]}-{i:x}"


def feed_events(tasks: list[tuple[str, int, float, float, str | None]]) -> list[dict[str, Any]]:
    """What a controller's feed sends a monitor that watched these tasks finish: (message id,
    engine, start, end, label) of each, those labelled ``chunk-…`` failing."""
    sent: list[dict[str, Any]] = []
    feed = Feed(lambda data, to: sent.append(data))
    feed.subscribe(b"monitor")
    for mid, engine, start, end, label in sorted(tasks, key=lambda t: t[3]):
        failed = (label or "").startswith("chunk-")
        feed.ran(engine, start, end, failed)
        if failed:
            header = {"id": mid, "e": engine, "m": "apply", "tc": end, "st": "error"}
            content = protocol.encode(
                {
                    "ename": "FileNotFoundError",
                    "evalue": "[Errno 2] No such file or directory: "
                    f"'/scratch/run7/{label}.parquet'",
                    "traceback": TRACEBACK.format(label=label),
                }
            )
            feed.error(header, content, label)
    feed.flush()
    return sent[1:]  # the backlog (empty) is dated now, not in the recorded past


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
    tasks = []
    k = 0
    # Engine 1 took a long task 40 s ago and is still on it: a straggler. Engine 3 is idle.
    # Engine 2 runs the second client's tasks, and every ninth one fails.
    for engine, step, until in ((0, 0.5, T0 - 1), (1, 0.7, T0 - 41), (2, 1.3, T0 - 1)):
        t = T0 - 58.0
        while t < until:
            client = 1 if engine == 2 else 0
            label = f"chunk-{k:04d}" if engine == 2 and k % 9 == 4 else None
            tasks.append((task_id(k, client), engine, t, t + step * 0.9, label))
            t += step
            k += 1
    status = {
        "cluster_id": "analysis",
        "uptime": 312.0,
        "usage": {"rss": 112_400_000, "cpu": 7.5},
        "queued": 37,
        "pending": 40,
        "counts": {"submitted": 280, "completed": 0, "failed": 0},
        "engines": [_engine(i) for i in range(4)],
    }
    state.on_status(status, T0 - 40)
    for data in feed_events(tasks):
        state.apply("activity", data, T0 - 1)
    for eid, stream, text in [
        (0, "stdout", "loading chunk 0040\n"),
        (0, "stdout", "loading chunk 0041\nmerged"),
        (0, "stdout", " 12 frames\n"),
        (0, "stderr", "warning: column 'x7' is empty\n"),
    ]:
        state.apply("activity", {"b": [], "out": [[eid, stream, text]]}, T0 - 1)
    failed = sum(1 for t in tasks if t[4])
    status["counts"] = {"submitted": 280, "completed": len(tasks) - failed, "failed": failed}
    for e in status["engines"]:
        done = [t for t in tasks if t[1] == e["id"]]
        e["failed"] = sum(1 for t in done if t[4])
        e["completed"] = len(done) - e["failed"]
    running = {0: (task_id(k, 0), T0 - 0.3, 98.5), 1: (task_id(k + 1, 0), T0 - 40.3, 99.7)}
    running[2] = (task_id(k + 2, 1), T0 - 0.8, 97.2)
    for eid, (mid, started, cpu) in running.items():
        stats = status["engines"][eid]["stats"]
        stats.update(task=mid, task_started=started, cpu=cpu)
        status["engines"][eid]["queue"] = 2
    status["engines"][1]["task_label"] = "merge-all"
    state.on_status(status, T0)
    state.on_launcher_events(LAUNCHER_EVENTS)
    return state


def many_engines_state(n: int = 1000, hosts: int = 16) -> ClusterState:
    """``n`` engines on ``hosts`` hosts after a minute of work: every host's engines busy
    in turn, those of node07 failing now and then, one straggler on node03."""
    state = ClusterState("big")
    state.on_connected({"controller_url": "tcp://10.0.0.5:50123", "launchers": "slurm"}, T0 - 60)
    engines = []
    for i in range(n):
        e = _engine(i % 4)
        e.update(id=i, uuid=f"{i:032x}", pid=30_000 + i, host=f"node{i % hosts:02d}")
        e["launcher"] = "slurm"
        engines.append(e)
    state.on_status({"engines": engines, "uptime": 3600.0}, T0 - 60)
    tasks = []
    for i in range(0, n, 3):
        host = i % hosts
        start = T0 - 60 + host * 2.5  # hosts start in turn
        for k in range(int((T0 - 1 - start) / 4)):
            label = "chunk-bad" if host == 7 and k % 5 == 2 else None
            tasks.append((task_id(i * 100 + k), i, start + 4 * k, start + 4 * k + 3.6, label))
    for data in feed_events(tasks):
        state.apply("activity", data, T0)
    finished = Counter(t[1] for t in tasks)
    failures = Counter(t[1] for t in tasks if t[4])
    for e in engines:
        e["failed"] = failures[e["id"]]
        e["completed"] = finished[e["id"]] - e["failed"]
    straggler = engines[3]
    straggler["stats"].update(task=task_id(999_999), task_started=T0 - 52, cpu=100.0)
    failed = sum(e["failed"] for e in engines)
    done = sum(e["completed"] for e in engines)
    state.on_status(
        {
            "engines": engines,
            "uptime": 3660.0,
            "usage": {"rss": 1_183_000_000, "cpu": 64.2},
            "counts": {"completed": done, "failed": failed},
            "queued": 5000,
            "pending": 5000 + n // 3,
        },
        T0,
    )
    return state
