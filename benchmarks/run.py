"""par side by side with ipyparallel and dask.distributed: ``python benchmarks/run.py``.

Runs each (peer, workload) pair in its own subprocess with a timeout, prints
a table of every figure with par's ratio to each peer and to the bare
ZeroMQ floor, and writes the results as JSON to ``benchmarks/results/`` and
to ``--out``. ``--quick`` runs tiny sizes in seconds (the test suite's
smoke run). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import report
from child import MARK
from workloads import FLOORS, PAR_ONLY, WORKLOADS, Config

HERE = Path(__file__).resolve().parent
PEERS = ("par", "ipyparallel", "dask")
DISTRIBUTIONS = {"par": "par-core", "ipyparallel": "ipyparallel", "dask": "distributed"}
TIMEOUTS = {
    "w1": 180,
    "w2": 420,
    "w3": 240,
    "w4": 240,
    "w5": 600,
    "w6": 180,
    "w7": 180,
    "w8": 1200,
    "w9": 900,
}
SKIPPED = {
    "w7": "not run by default: too slow for the time budget (--w7-peers to include)",
    "w9": "not run by default: W9's peer figure is ipyparallel's (--w9-peers to include)",
}
QUICK_TIMEOUT = 90


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x.replace("_", "")) for x in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of engine counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"engine counts must be 1 or more: {text!r}")
    return counts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers", type=_csv, default=list(PEERS), help="comma list (default: all)")
    p.add_argument(
        "--workloads", type=_csv, default=list(WORKLOADS), help="e.g. w1,w2 (default: all)"
    )
    p.add_argument("--no-floor", action="store_true", help="skip the bare ZeroMQ floors")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of par and the floor, alternating, for the workloads with a floor "
        "(W1, W3); figures are their medians (default 3)",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the code runs")
    p.add_argument("--engines", type=int, help="engines for W1, W3, W5, W6 (default 2)")
    p.add_argument("--w2-tasks", type=int, help="W2 tasks for par (default 20,000)")
    p.add_argument("--w7-engines", type=int, help="W7 engines (default 256)")
    p.add_argument(
        "--w7-peers", type=_csv, default=["par"], help="peers that run W7 (default: par only)"
    )
    p.add_argument(
        "--w8-engines", type=_counts, help="W8 simulated engine counts (default 1000,5000,10000)"
    )
    p.add_argument("--w9-engines", type=_counts, help="W9 real engine counts (default 256,1000)")
    p.add_argument(
        "--w9-peers",
        type=_csv,
        default=["par", "ipyparallel"],
        help="peers that run W9 (default: par and ipyparallel, which starts 256 engines only)",
    )
    p.add_argument("--w8-tasks", type=int, help="W8 map tasks (default 100,000)")
    p.add_argument(
        "--w8-survive",
        type=float,
        help="W8 seconds of idle heartbeats watched (default 120; 0 skips them)",
    )
    p.add_argument(
        "--w8-heartbeat",
        type=float,
        help="W8 seconds between heartbeats, timeout six of them (default: the controller's, 1)",
    )
    p.add_argument("--out", type=Path, help="also write the JSON results here")
    p.add_argument(
        "--results-dir", type=Path, default=HERE / "results", help="where each run's JSON is kept"
    )
    args = p.parse_args(argv)
    unknown = [x for x in args.peers + args.w7_peers + args.w9_peers if x not in PEERS]
    unknown += [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown peer or workload: {', '.join(unknown)}")
    if args.rounds < 1:
        p.error(f"--rounds must be 1 or more, not {args.rounds}")
    if args.w8_survive is not None and not args.w8_survive >= 0:
        p.error(f"--w8-survive must be 0 (none) or a number of seconds, not {args.w8_survive}")
    if args.w8_heartbeat is not None and not args.w8_heartbeat > 0:
        p.error(f"--w8-heartbeat must be a positive number of seconds, not {args.w8_heartbeat}")
    return args


def config(args: argparse.Namespace) -> Config:
    """Workload sizes from the command line."""
    cfg = Config.quick() if args.quick else Config()
    if args.engines:
        cfg.engines = args.engines
    if args.w2_tasks:
        cfg.w2_tasks = args.w2_tasks
    if args.w7_engines:
        cfg.w7_engines = args.w7_engines
    if args.w8_engines:
        cfg.w8_engines = args.w8_engines
    if args.w8_tasks:
        cfg.w8_tasks = args.w8_tasks
    if args.w8_survive is not None:
        cfg.w8_survive_s = args.w8_survive
    if args.w8_heartbeat is not None:
        cfg.w8_heartbeat_s = args.w8_heartbeat
    if args.w9_engines:
        cfg.w9_engines = args.w9_engines
    return cfg


def _kill_tree(pid: int) -> None:
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for proc in reversed(procs):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def run_one(peer: str, workload: str, cfg: Config, timeout: float) -> tuple[dict[str, Any], str]:
    """Run one workload for one peer in a subprocess; return its figures and a status."""
    cmd = [sys.executable, str(HERE / "child.py"), peer, workload, json.dumps(cfg.to_dict())]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            status = "ok" if proc.returncode == 0 else f"crashed (exit {proc.returncode})"
        except subprocess.TimeoutExpired:
            _kill_tree(proc.pid)
            out, _ = proc.communicate()
            status = f"timed out after {timeout:.0f} s"
        err.seek(0)
        tail = err.read().decode(errors="replace").strip().splitlines()
    if status != "ok" and tail:
        errors = [line for line in tail if re.match(r"^[\w.]*(Error|Exception|Exit)\b", line)]
        status += ": " + (errors or tail)[-1][:200]
    found: dict[str, Any] = {}
    for line in out.splitlines():
        if line.startswith(MARK):
            item = json.loads(line[len(MARK) :])
            found[item["key"]] = item["value"]
    return found, status


def machine() -> dict[str, Any]:
    """What this machine is, for the results file."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory_GB": round(psutil.virtual_memory().total / 1e9, 1),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def versions(peers: list[str]) -> dict[str, str]:
    """Installed versions of the peers under test."""
    out = {}
    for peer in peers:
        try:
            out[peer] = metadata.version(DISTRIBUTIONS[peer])
        except metadata.PackageNotFoundError:
            out[peer] = "not installed"
    return out


def runs_workload(peer: str, workload: str, args: argparse.Namespace) -> bool:
    """Whether a peer runs a workload: W7 and W9 only their ``--wN-peers``, W8 par only."""
    if workload in PAR_ONLY:
        return peer == "par"
    chosen = {"w7": args.w7_peers, "w9": args.w9_peers}
    return peer in chosen.get(workload, [peer])


def plan(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The (peer, workload) pairs to run, in order. A workload with a floor runs par and
    the floor ``--rounds`` times, alternating, so that a drift in the machine's speed
    weighs on both (its targets are ratios to the floor); the other peers run once."""
    pairs = []
    for workload in args.workloads:
        floor = not args.no_floor and workload in FLOORS
        for round_ in range(args.rounds if floor else 1):
            for peer in args.peers:
                if runs_workload(peer, workload, args) and (round_ == 0 or peer == "par"):
                    pairs.append((peer, workload))
            if floor:
                pairs.append(("floor", workload))
    return pairs


def medians(samples: dict[str, list[Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds that measured it (the last of anything else)."""
    out = {}
    for key, found in samples.items():
        numbers = [v for v in found if isinstance(v, int | float)]
        out[key] = statistics.median(numbers) if numbers else found[-1]
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; print the table; write the JSON."""
    args = parse_args(argv)
    cfg = config(args)
    floors = not args.no_floor and any(w in FLOORS for w in args.workloads)
    columns = list(args.peers) + (["floor"] if floors else [])
    started = datetime.now(UTC)
    home = tempfile.TemporaryDirectory(prefix="par-bench-")
    os.environ["PAR_HOME"] = home.name  # our clusters only: no `par stop --all` elsewhere hits them
    t0 = time.monotonic()
    info = machine()
    samples: dict[str, dict[str, list[Any]]] = {c: {} for c in columns}
    runs = []
    for peer, workload in plan(args):
        timeout = QUICK_TIMEOUT if args.quick else TIMEOUTS[workload]
        t = time.monotonic()
        found, status = run_one(peer, workload, cfg, timeout)
        seconds = time.monotonic() - t
        runs.append({"peer": peer, "workload": workload, "status": status, "seconds": seconds})
        print(
            f"[{time.monotonic() - t0:6.0f} s] {peer} {workload}: {status} ({seconds:.1f} s)",
            flush=True,
        )
        for key, value in found.items():
            samples[peer].setdefault(key, []).append(value)
        if status != "ok":
            failed = {"na": f"{peer} {workload} {status}"}
            samples[peer].setdefault(f"{workload}.failed", []).append(failed)
    values = {peer: medians(per) for peer, per in samples.items()}
    for peer in args.peers:
        for workload in args.workloads:
            if not runs_workload(peer, workload, args):
                reason = PAR_ONLY.get(workload) or SKIPPED[workload]
                values[peer][f"{workload}.failed"] = {"na": reason}
    for per in values.values():
        for key in [k for k in per if k.endswith(".failed")]:
            prefix = key.split(".")[0] + "."
            for fig in report.figures(cfg):
                if fig.key.startswith(prefix) and fig.key not in per:
                    per[fig.key] = per[key]
            del per[key]
    rows = {
        key: row
        for key, row in report.build(cfg, columns, values).items()
        if key.split(".")[0] in args.workloads
    }
    text = report.table(rows, columns)
    elapsed = time.monotonic() - t0
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    data = {
        "date": started.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "quick": args.quick,
        "machine": info,
        "versions": versions(args.peers),
        "config": cfg.to_dict(),
        "rounds": args.rounds,
        "figures": rows,
        "runs": runs,
        "table": text,
    }
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    paths = [args.results_dir / f"bench-{stamp}.json"] + ([args.out] if args.out else [])
    for path in paths:
        report.write(path, data)
    print()
    cpus = f"{info['cpus']} CPUs ({info['cpu']})"
    print(f"par benchmarks, {data['date']}, {cpus}, load {info['load_average']}")
    print(f"versions: {', '.join(f'{k} {v}' for k, v in data['versions'].items())}")
    if floors and args.rounds > 1:
        print(f"par and the floor: medians of {args.rounds} alternating rounds (W1, W3)")
    print()
    print(text)
    print(f"done in {elapsed:.0f} s; results in {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
