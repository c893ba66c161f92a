"""``rc.monitor()``: a live panel in a real Jupyter kernel, and text outside one."""

from __future__ import annotations

import json
from typing import Any

import nbformat
import par
from nbclient import NotebookClient

CELLS = [
    """
import time, par
cluster = par.Cluster(n=2)
rc = cluster.start_and_connect_sync()
rc.wait_for_engines(2, timeout=60)

def until(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "still not true"
        time.sleep(0.1)
""",
    "panel = rc.monitor(interval=0.2)\npanel",
    """
until(lambda: panel.snapshot is not None and panel.snapshot.up == 2)

def boom():
    raise ValueError("raised in the notebook")

rc[0].apply_async(boom)
until(lambda: "raised in the notebook" in panel.errors.value)
time.sleep(1)  # the kernel sends the widgets' last changes
""",
    """
panel.buttons["add"].click()
until(lambda: panel.snapshot.up == 3)
time.sleep(1)
print(sorted(r.id for r in panel.snapshot.engines if r.alive))
""",
    "panel.close()\nrc.close()\ncluster.stop_cluster_sync()",
]


def widget_states(nb: Any) -> list[dict[str, Any]]:
    """The saved state of every widget model the notebook's kernel created."""
    saved = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [model["state"] for model in saved.values()]


def test_the_panel_in_a_real_kernel_shows_the_cluster_and_acts() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()

    shown = nb.cells[1].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in shown
    assert json.loads(nb.cells[3].outputs[0]["text"]) == [0, 1, 2]  # the Add button added one

    states = widget_states(nb)
    buttons = {s["description"] for s in states if s.get("_model_name") == "ButtonModel"}
    assert {"Add engine", "Stop", "Restart", "SIGINT", "Abort queued", "Stop cluster"} <= buttons
    html = [s.get("value", "") for s in states if s.get("_model_name") == "HTMLModel"]
    table = next(v for v in html if "par-engines" in v)
    assert table.count("<tr class='par-up'>") + table.count("<tr class='par-busy'>") == 3
    assert any("ValueError" in v and "raised in the notebook" in v for v in html)
    assert any("3 up" in v and "1 failed" in v for v in html)
    dropdown = next(s for s in states if s.get("_model_name") == "DropdownModel")
    assert dropdown["_options_labels"] == ["0", "1", "2"]


def test_outside_a_notebook_it_is_text(cluster: par.Cluster, rc: par.Client) -> None:
    text = str(rc.monitor())
    lines = text.splitlines()
    assert lines[0].startswith(f"cluster {cluster.cluster_id}")
    assert "engines 4 up" in lines[1]
    assert [line.split()[0] for line in lines[3:]] == ["0", "1", "2", "3"]
