"""A tiny run of the benchmark suite against par, so that its code does not rot.

It checks the shape of the results, never a speed: figures on a shared
machine are noise at these sizes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"
WORKLOADS = ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9")


@pytest.mark.timeout(600)
def test_quick_run_against_par(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(RUN), "--quick", "--peers", "par", "--out", str(out)]
    cmd += ["--results-dir", str(tmp_path / "kept")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-2000:]

    data = json.loads(out.read_text())
    assert data["quick"] is True
    assert data["versions"]["par"] not in ("", "not installed")
    assert {"cpus", "platform", "load_average"} <= set(data["machine"])
    assert list((tmp_path / "kept").glob("bench-*.json"))

    runs = {(r["peer"], r["workload"]): r["status"] for r in data["runs"]}
    assert {("par", w) for w in WORKLOADS} | {("floor", "w1"), ("floor", "w3")} == set(runs)
    assert all(status == "ok" for status in runs.values()), runs
    for workload in ("w1", "w3"):  # par and the floor alternate, the figures their medians
        order = [(r["peer"], r["workload"]) for r in data["runs"] if r["workload"] == workload]
        assert order == [("par", workload), ("floor", workload)] * data["rounds"]
    assert data["rounds"] == 3

    figures = data["figures"]
    assert {key.split(".")[0] for key in figures} == set(WORKLOADS)
    for key, row in figures.items():
        assert set(row) == {"label", "unit", "values", "ratios", "target", "met"}, key
        assert set(row["values"]) == {"par", "floor"}, key
        value = row["values"]["par"]
        assert isinstance(value, int | float) and value >= 0, (key, value)
        assert row["met"] in (True, False, None), key
    assert figures["w7.answering"]["values"]["par"] == data["config"]["w7_engines"]
    assert isinstance(figures["w1.direct.median_us"]["ratios"]["floor"], float)

    assert "| figure |" in proc.stdout and "W1 round trip" in proc.stdout
    assert data["table"] in proc.stdout


def _run_module():
    sys.path.insert(0, str(RUN.parent))
    try:
        import run
    finally:
        sys.path.remove(str(RUN.parent))
    return run


def test_par_and_the_floor_alternate_and_figures_are_their_medians() -> None:
    run = _run_module()
    args = run.parse_args(["--peers", "par,dask", "--workloads", "w1,w2", "--rounds", "2"])
    assert run.plan(args) == [
        ("par", "w1"),
        ("dask", "w1"),
        ("floor", "w1"),
        ("par", "w1"),
        ("floor", "w1"),
        ("par", "w2"),
        ("dask", "w2"),
    ]
    failed = {"na": "par w1 timed out"}
    assert run.medians({"a": [3.0, 1.0, 2.0], "b": [failed]}) == {"a": 2.0, "b": failed}
    with pytest.raises(SystemExit):
        run.parse_args(["--rounds", "0"])


@pytest.mark.timeout(120)
def test_w8_heartbeat_reaches_the_controller_and_every_w8_row_says_so() -> None:
    run = _run_module()
    with pytest.raises(SystemExit):
        run.parse_args(["--w8-heartbeat", "0"])
    cfg = run.config(run.parse_args(["--w8-heartbeat", "2.5"]))
    assert cfg.w8_heartbeat_s == 2.5

    import report
    import sim_scale

    labels = [f.label for f in report.w8_figures(cfg)]
    assert labels and all(label.startswith("W8 (heartbeat 2.5 s) ") for label in labels)
    cfg.w8_heartbeat_s = None
    assert not any("heartbeat 2.5" in f.label for f in report.w8_figures(cfg))

    with sim_scale.controller(2.5) as (_rc, _file, process):
        cmdline = process.cmdline()
    at = cmdline.index("--heartbeat")
    assert cmdline[at + 1] == "2.5"
    assert cmdline[cmdline.index("--heartbeat-timeout") + 1] == "15"


@pytest.mark.timeout(300)
def test_w8_survive_0_skips_the_idle_heartbeats_and_keeps_the_other_figures() -> None:
    run = _run_module()
    with pytest.raises(SystemExit):
        run.parse_args(["--w8-survive", "-1"])
    cfg = run.config(run.parse_args(["--quick", "--w8-survive", "0"]))

    import report
    import sim_scale

    assert not any(f.key.startswith("w8.survive") for f in report.w8_figures(cfg))
    figures: dict[str, object] = {}
    sim_scale.w8_scale_sim("par", cfg, figures.__setitem__)
    counts = sorted(cfg.w8_engines)
    assert set(figures) == {f"w8.{what}.{n}" for what in sim_scale.PER_COUNT for n in counts}
    assert all(isinstance(v, int | float) for v in figures.values()), figures


@pytest.mark.timeout(180)
def test_heartbeat_memory_reports_each_role_as_the_beats_pass() -> None:
    script = RUN.parent / "heartbeat_memory.py"
    cmd = [sys.executable, str(script), "--engines", "20", "--heartbeat", "0.2"]
    cmd += ["--beats", "10", "--every", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150, cwd=RUN.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [row["beats"] for row in rows] == [0, 5, 10]
    assert rows[0]["engines"] == 20
    for row in rows:
        assert set(row["rss_MB"]) == {"hub", "control", "direct"}
        assert all(mb > 0 for mb in row["rss_MB"].values())
        assert isinstance(row["control_KB_per_engine"], float)
