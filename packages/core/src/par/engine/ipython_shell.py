"""The engine's IPython shell: magics, shell escapes and IPython's execution events.

Imported only when a cell needs IPython (see :mod:`par.engine.cells`): it
imports IPython. The shell is IPython's own, over the engine's namespace
(which becomes ``__main__``, as in an IPython kernel), with two differences
an engine needs: it keeps no history file (engines would contend for the
user's), and it has no GUI event loop to enable (``%matplotlib inline`` and
non-GUI backends work; ``%matplotlib qt`` is refused). What cells print goes
to the task's output; what they display goes there through
:mod:`par.engine.display`, which IPython's display functions are routed to.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell
from traitlets.config import Config

from . import namespace


class EngineShell(InteractiveShell):
    """IPython's shell over the engine's namespace, without history or GUI event loop."""

    def enable_gui(self, gui: str | None = None) -> None:
        """Refuse a GUI event loop: an engine has no display to run one on."""
        if gui is not None:
            raise UsageError(f"an engine has no GUI event loop for {gui!r}: use %matplotlib inline")

    def run_compiled(self, cell: namespace.Cell, raw_cell: str, silent: bool) -> Any:
        """Run a compiled cell, firing IPython's execution events around it as ``run_cell``
        does; return its final expression's value."""
        info = ExecutionInfo(raw_cell, False, silent, True, None)
        result = ExecutionResult(info)
        self.events.trigger("pre_execute")
        if not silent:
            self.events.trigger("pre_run_cell", info)
        try:
            result.result = namespace.run_cell(cell)
        except BaseException as exc:
            result.error_in_exec = exc
            raise
        finally:
            self.events.trigger("post_execute")
            if not silent:
                self.events.trigger("post_run_cell", result)
        return result.result


def start() -> EngineShell:
    """Make the engine's shell (IPython's singleton: ``get_ipython()`` returns it)."""
    config = Config()
    config.HistoryManager.enabled = False
    shell = EngineShell.instance(config=config, user_ns=namespace.user_ns)
    namespace.keep(shell.user_ns_hidden)  # get_ipython, In, Out...: clear() keeps them
    return shell
