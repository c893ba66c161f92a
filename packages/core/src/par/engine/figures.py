"""Matplotlib figures on engines: shown as PNG images, as an IPython kernel shows them.

Neither part imports matplotlib: they act once a task has.

- :func:`png` renders a ``Figure`` that a task displays (``par.display(fig)``,
  IPython's ``display(fig)``, the inline backend showing it), so that it
  reaches the client as ``image/png``, as IPython's formatter renders
  figures once its matplotlib support is on.
- :func:`default_to_inline` makes matplotlib-inline's backend the engine's
  default, as IPython kernels do (ipyparallel's engines are kernels), when it
  and IPython are installed and ``MPLBACKEND`` is not set: ``plt.show()``
  in a task then displays its figures. (``%matplotlib inline`` chooses that
  backend as well, and makes a cell's figures show at its end.) Set
  ``MPLBACKEND`` for the engines to choose another backend.
"""

from __future__ import annotations

import io
import os
import sys
from importlib.machinery import PathFinder
from typing import Any

INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


def default_to_inline() -> None:
    """Default matplotlib to the inline backend where it is installed (not imported here)."""
    if "MPLBACKEND" not in os.environ and all(
        PathFinder.find_spec(name) is not None for name in ("matplotlib_inline", "IPython")
    ):  # the backend imports IPython
        os.environ["MPLBACKEND"] = INLINE_BACKEND


def png(obj: Any) -> bytes | None:
    """A matplotlib figure as PNG, cropped to what it draws; None for any other object."""
    figure = sys.modules.get("matplotlib.figure")
    if figure is None or not isinstance(obj, figure.Figure):
        return None
    out = io.BytesIO()
    obj.canvas.print_figure(out, format="png", bbox_inches="tight")
    return out.getvalue()
