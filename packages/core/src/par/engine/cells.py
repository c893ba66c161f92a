"""Running an execute request's code as a cell: Python, or IPython syntax where IPython is.

Code that compiles as Python runs as it is, and IPython is not involved: an
engine whose cells never use IPython syntax never imports it, and stays
small. Code that does not compile goes through IPython's input transformer
(``%magic``, ``%%cell`` magics, ``!cmd``, ``x = !cmd``, ``obj?``, pasted
``>>>`` prompts) and runs in the engine's IPython shell
(:mod:`par.engine.ipython_shell`), made on that first need, whose user
namespace is the engine's, as ipyparallel's engines (IPython kernels) run it.
Code the transformer leaves unchanged fails with its own SyntaxError. Without
IPython on the engine, code that looks like IPython syntax fails with a
SyntaxError that says to install it.

Once the shell exists every cell runs through it, firing IPython's execution
events around it, so that what they drive works as in IPython: after
``%matplotlib inline`` a cell's figures are shown at its end.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from . import namespace

if TYPE_CHECKING:
    from .ipython_shell import EngineShell

_shell: EngineShell | None = None
# A line that only IPython reads: a magic or shell escape at its start, a help query at its end.
_IPYTHON_LINE = re.compile(r"^\s*[%!?]|\?\s*$", re.MULTILINE)


def run(code: str, interactive: bool) -> Any:
    """Run an execute request's code in the engine's namespace; ``interactive``: return
    the value of its final expression (as :func:`par.engine.namespace.compile_cell`)."""
    try:
        cell = namespace.compile_cell(code, interactive)
    except SyntaxError as exc:
        cell = namespace.compile_cell(_from_ipython(code, exc), interactive)
    if _shell is None:
        return namespace.run_cell(cell)
    return _shell.run_compiled(cell, code, silent=not interactive)


def _from_ipython(code: str, error: SyntaxError) -> str:
    """Python for code that is not: IPython's transformation of it, made by the engine's
    shell (started here on first need). Raises ``error`` if IPython changes nothing."""
    global _shell
    if _shell is None:
        try:
            from . import ipython_shell
        except ModuleNotFoundError as exc:
            if exc.name != "IPython":
                raise
            if _IPYTHON_LINE.search(code):
                raise SyntaxError(
                    f"{error.msg}: this looks like IPython syntax (%magic, !command), and "
                    "IPython is not installed on this engine: install it there "
                    "(pip install ipython) or send plain Python",
                    (error.filename, error.lineno, error.offset, error.text),
                ) from None
            raise error from None
        _shell = ipython_shell.start()
    source = _shell.transform_cell(code)
    if source == code:
        raise error
    return source
