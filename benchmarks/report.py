"""The figures, their targets, the printed table and the JSON results.

Every ratio is par's figure divided by the peer's, whatever the unit: a
latency ratio of 0.2 means par takes a fifth of the time, a throughput
ratio of 30 means par does thirty times as much.
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workloads import Config

Value = float | dict[str, str] | None  # a number, {"na": reason}, or not measured
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
SHORT = {"ipyparallel": "ipp", "dask": "dask", "floor": "floor"}


@dataclass
class Figure:
    """One row of the table: a measured quantity and par's targets for it.

    A target is ``(against, op, bound)``: ``against`` is a peer or ``floor``
    (the bound applies to par's ratio to it) or ``value`` (to par's figure).
    """

    key: str
    label: str
    unit: str
    targets: list[tuple[str, str, float]] = field(default_factory=list)

    def target_text(self) -> str:
        """The targets, written for the table."""
        parts = []
        for against, op, bound in self.targets:
            if against == "value":
                parts.append(f"{op} {bound:g} {self.unit}")
            else:
                parts.append(f"{op} {bound:g}x {SHORT.get(against, against)}")
        return "; ".join(parts)


def figures(cfg: Config) -> list[Figure]:
    """Every figure of a run of these sizes, in table order."""
    fast = [("ipyparallel", "<=", 0.2)]
    out = [
        Figure(
            "w1.direct.median_us",
            "W1 round trip, direct, median",
            "µs",
            [*fast, ("floor", "<=", 1.5)],
        ),
        Figure("w1.direct.p99_us", "W1 round trip, direct, p99", "µs"),
        Figure("w1.lb.median_us", "W1 round trip, load-balanced, median", "µs", fast),
        Figure("w1.lb.p99_us", "W1 round trip, load-balanced, p99", "µs"),
    ]
    many = [("ipyparallel", ">=", 30.0), ("dask", ">=", 20.0)]
    for n in cfg.w2_engines:
        out.append(Figure(f"w2.map.{n}", f"W2 map, {n} engines", "tasks/s", many))
        out.append(Figure(f"w2.apply.{n}", f"W2 apply_async loop, {n} engines", "tasks/s", many))
    mb = cfg.w3_bytes / 1e6
    half = [("floor", ">=", 0.5)]
    out += [
        Figure("w3.push_MBps", f"W3 push {mb:g} MB to {cfg.engines} engines", "MB/s", half),
        Figure("w3.pull_MBps", f"W3 pull {mb:g} MB from {cfg.engines} engines", "MB/s", half),
        Figure(
            "w4.start_s",
            f"W4 start to {cfg.w4_engines} engines answering",
            "s",
            [("value", "<", 1.0), ("ipyparallel", "<", 1.0), ("dask", "<", 1.0)],
        ),
        Figure("w4.stop_s", "W4 stop to no process left", "s"),
        Figure("w5.engine_idle_MB", "W5 idle engine RSS", "MB", [("value", "<", 30.0)]),
        Figure("w5.controller_idle_MB", "W5 idle controller RSS", "MB"),
        Figure("w5.engine_idle_cpu_ms", "W5 idle engine CPU (median)", "ms/s"),
        Figure("w5.controller_idle_cpu_ms", "W5 idle controller CPU", "ms/s"),
    ]
    for n in cfg.w5_tasks:
        out.append(Figure(f"w5.controller_{n}_MB", f"W5 controller RSS after {n:,} tasks", "MB"))
    lo, hi = min(cfg.w5_tasks), max(cfg.w5_tasks)
    out += [
        Figure(
            "w5.growth_pct",
            f"W5 controller growth {lo:,} -> {hi:,} tasks",
            "%",
            [("value", "<=", 10.0)],
        ),
        Figure(
            "w6.efficiency_pct",
            f"W6 CPU-bound map efficiency, {cfg.engines} engines",
            "%",
            [("value", ">", 95.0)],
        ),
        Figure("w7.register_s", f"W7 {cfg.w7_engines} engines registered", "s"),
        Figure("w7.execute_s", f"W7 broadcast execute on {cfg.w7_engines}", "s"),
        Figure(
            "w7.answering",
            "W7 engines answering",
            "engines",
            [("value", ">=", float(cfg.w7_engines))],
        ),
        Figure("w7.total_s", "W7 start to all answering", "s", [("value", "<", 30.0)]),
    ]
    return out + w8_figures(cfg) + w9_figures(cfg)


def w8_figures(cfg: Config) -> list[Figure]:
    """W8's figures for each count of simulated engines; the targets are the largest's."""
    most = max(cfg.w8_engines)
    none_lost = [("value", "<=", 0.0)]
    out = []
    for n in sorted(cfg.w8_engines):
        largest = n == most

        def target(op: str, bound: float, largest: bool = largest) -> list[tuple[str, str, float]]:
            return [("value", op, bound)] if largest else []

        out += [
            Figure(
                f"w8.register_s.{n}", f"W8 {n:,} simulated engines registered", "s", target("<", 30)
            ),
            Figure(f"w8.register_cpu_s.{n}", f"W8 controller CPU registering {n:,}", "s"),
            Figure(f"w8.execute_s.{n}", f"W8 execute answered by all {n:,}", "s", target("<", 3)),
            Figure(
                f"w8.map.{n}",
                f"W8 map of {cfg.w8_tasks:,} no-op tasks on {n:,}",
                "tasks/s",
                target(">=", 20_000),
            ),
            Figure(f"w8.map_cpu_us.{n}", f"W8 controller CPU per map task on {n:,}", "µs"),
            Figure(
                f"w8.controller_MB.{n}",
                f"W8 controller RSS with {n:,}, after the map",
                "MB",
                target("<", 1000),
            ),
            Figure(f"w8.lost.{n}", f"W8 engines declared lost, {n:,}", "losses", none_lost),
            Figure(f"w8.late_s.{n}", f"W8 worst simulated heartbeat lateness, {n:,}", "s"),
        ]
    window = f"{cfg.w8_survive_s:g} s"
    out += (
        []
        if cfg.w8_survive_s <= 0
        else [
            Figure(
                "w8.survive_engines",
                f"W8 engines through {window} of idle heartbeats",
                "engines",
                [("value", ">=", float(most))],
            ),
            Figure("w8.survive_cpu", f"W8 controller CPU in that {window}", "cores"),
            Figure("w8.survive_lost", f"W8 engines lost in that {window}", "losses", none_lost),
            Figure("w8.survive_late_s", "W8 worst simulated heartbeat lateness by its end", "s"),
        ]
    )
    if cfg.w8_heartbeat_s is not None:  # every row says it was not the default
        beat = f"W8 (heartbeat {cfg.w8_heartbeat_s:g} s)"
        out = [replace(f, label=f.label.replace("W8", beat, 1)) for f in out]
    return out


W9_START_TARGETS = {256: 5.0, 1_000: 20.0}  # seconds to all registered and answering
W9_USS_TARGETS = {1_000: 24_000.0}  # MB: the machine's memory


def w9_figures(cfg: Config) -> list[Figure]:
    """W9's figures for each count of real engines."""
    out = []
    for n in cfg.w9_engines:
        start = W9_START_TARGETS.get(n)
        uss = W9_USS_TARGETS.get(n)
        out += [
            Figure(
                f"w9.start_s.{n}",
                f"W9 start to {n:,} real engines answering",
                "s",
                [("value", "<", start)] if start else [],
            ),
            Figure(f"w9.registered_s.{n}", f"W9 start to {n:,} real engines registered", "s"),
            Figure(f"w9.cpu_s.{n}", f"W9 CPU of every process to start {n:,}", "s"),
            Figure(
                f"w9.uss_MB.{n}",
                f"W9 {n:,} engines' memory, sum of USS",
                "MB",
                [("value", "<", uss)] if uss else [],
            ),
            Figure(f"w9.pss_MB.{n}", f"W9 {n:,} engines' memory, sum of PSS", "MB"),
            Figure(f"w9.rss_MB.{n}", f"W9 {n:,} engines' memory, sum of RSS", "MB"),
        ]
    return out


def add_growth(values: dict[str, dict[str, Value]], cfg: Config) -> None:
    """Derive each peer's controller growth between the smallest and largest task count."""
    lo, hi = min(cfg.w5_tasks), max(cfg.w5_tasks)
    for per in values.values():
        a, b = per.get(f"w5.controller_{lo}_MB"), per.get(f"w5.controller_{hi}_MB")
        if isinstance(a, float | int) and isinstance(b, float | int):
            per["w5.growth_pct"] = 100 * (b - a) / a
        elif isinstance(b, dict):
            per["w5.growth_pct"] = b


def _ratio(a: Value, b: Value) -> float | None:
    if isinstance(a, float | int) and isinstance(b, float | int) and b:
        return a / b
    return None


def evaluate(fig: Figure, values: dict[str, dict[str, Value]]) -> bool | None:
    """Whether par meets every target of a figure; None if a needed figure is missing."""
    if not fig.targets:
        return None
    par = values.get("par", {}).get(fig.key)
    for against, op, bound in fig.targets:
        if against == "value":
            x = par if isinstance(par, float | int) else None
        else:
            x = _ratio(par, values.get(against, {}).get(fig.key))
        if x is None:
            return None
        if not OPS[op](x, bound):
            return False
    return True


def _fmt(value: float, unit: str) -> str:
    if unit in ("µs", "tasks/s", "MB/s", "engines", "losses"):
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:,.1f}"


def _fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    if r >= 10:
        return f"{r:,.0f}x"
    return f"{r:.2f}x" if r >= 0.1 or r == 0 else f"{r:.3f}x"


def build(cfg: Config, columns: list[str], values: dict[str, dict[str, Value]]) -> dict[str, Any]:
    """Figures, ratios and targets met, as a JSON-ready dict keyed by figure."""
    add_growth(values, cfg)
    out: dict[str, Any] = {}
    for fig in figures(cfg):
        row = {peer: values.get(peer, {}).get(fig.key) for peer in columns}
        par = row.get("par")
        ratios = {p: _ratio(par, row[p]) for p in columns if p != "par"}
        out[fig.key] = {
            "label": fig.label,
            "unit": fig.unit,
            "values": row,
            "ratios": ratios,
            "target": fig.target_text(),
            "met": evaluate(fig, values),
        }
    return out


def table(rows: dict[str, Any], columns: list[str]) -> str:
    """A Markdown table of every figure, with par's ratios, targets and notes for n/a cells."""
    others = [c for c in columns if c != "par"]
    head = [
        "figure",
        "unit",
        *columns,
        *(f"par/{SHORT.get(c, c)}" for c in others),
        "target",
        "met",
    ]
    notes: list[str] = []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows.values():
        cells = [row["label"], row["unit"]]
        for peer in columns:
            v = row["values"].get(peer)
            if isinstance(v, dict):
                reason = v.get("na", "?")
                if reason not in notes:
                    notes.append(reason)
                cells.append(f"n/a [{notes.index(reason) + 1}]")
            elif v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("—")
            else:
                cells.append(_fmt(v, row["unit"]))
        cells += [_fmt_ratio(row["ratios"].get(c)) for c in others]
        met = {True: "yes", False: "**no**", None: "?" if row["target"] else ""}[row["met"]]
        cells += [row["target"], met]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"[{i}] {reason}" for i, reason in enumerate(notes, 1)]
    return "\n".join(lines).rstrip() + "\n"


def write(path: Path, data: dict[str, Any]) -> None:
    """Write the results as JSON (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
