"""Matplotlib figures shown on engines reach the client as PNG images, as from IPython kernels.

Each test uses an engine of its own: choosing a backend is for the life of an engine.
"""

from __future__ import annotations

import base64
from typing import Any

import par
import pytest

pytest.importorskip("IPython")
pytest.importorskip("matplotlib")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(output: dict[str, Any]) -> bool:
    """Whether a display output carries a PNG image, base64-encoded as in Jupyter."""
    data = output["data"].get("image/png")
    return data is not None and base64.b64decode(data).startswith(PNG_SIGNATURE)


def test_after_matplotlib_inline_a_cell_shows_its_figures(rc: par.Client) -> None:
    engine = rc[0]
    engine.execute("%matplotlib inline", block=True)
    ar = engine.execute("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])", block=True)
    (shown,) = ar.outputs
    assert is_png(shown) and shown["data"]["text/plain"].startswith("<Figure size")
    assert engine.execute("x = 1", block=True).outputs == []  # shown once, then closed


def test_pylab_inline(rc: par.Client) -> None:
    engine = rc[1]
    engine.execute("%pylab inline", block=True)
    reply = engine.execute("plot(rand(10))", silent=False, block=True).get()
    (shown,) = reply.outputs
    assert is_png(shown) and "Line2D" in reply.execute_result["data"]["text/plain"]


def show_a_plot() -> None:
    import matplotlib.pyplot as plt

    plt.plot([1, 2, 4])
    plt.show()


def test_plt_show_in_a_task_shows_its_figure(rc: par.Client) -> None:
    ar = rc[2].apply_async(show_a_plot)
    ar.get()
    (shown,) = ar.outputs
    assert is_png(shown) and ar.stderr == ""


def display_a_figure() -> str:
    from IPython.display import display
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().plot([2, 1])
    par.display(fig)
    display(fig)
    return type(fig).__name__


def test_a_displayed_figure_and_a_figure_as_a_result_are_png(rc: par.Client) -> None:
    engine = rc[3]
    ar = engine.apply_async(display_a_figure)
    assert ar.get() == "Figure"
    assert [is_png(o) for o in ar.outputs] == [True, True]
    engine.execute("from matplotlib.figure import Figure\nfig = Figure()\nfig.subplots()")
    reply = engine.execute("fig", silent=False, block=True).get()
    assert is_png(reply.execute_result) and reply.outputs == []
