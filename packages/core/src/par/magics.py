"""IPython magics: ``%px``, ``%%px``, ``%autopx``, ``%pxresult`` and ``%pxconfig``.

``view.activate(suffix="")`` registers them (named ``px<suffix>`` and so on)
for that view in the running IPython session. Options follow ipyparallel's:
``-b/--block``, ``-a/--noblock``, ``--stream/--no-stream``, ``-t/--targets``,
``--verbose/--no-verbose``, ``--progress-after``, ``--signal-on-interrupt``,
``-r``, ``-e``, ``--group-outputs``, ``-o/--out`` and ``%%px --local``.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
from typing import TYPE_CHECKING, Any

from .progress import noninteractive, progress_bar

if TYPE_CHECKING:
    from .client.asyncresult import AsyncResult
    from .client.directview import DirectView


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as IPython's UsageError instead of exiting."""

    def error(self, message: str) -> Any:
        usage_error = importlib.import_module("IPython.core.error").UsageError
        raise usage_error(f"{self.prog}: {message}")


def _parser(prog: str, exec_args: bool, output_args: bool, local: bool = False) -> _Parser:
    p = _Parser(prog=prog, add_help=False)
    if exec_args:
        p.add_argument("-b", "--block", dest="block", action="store_const", const=True)
        p.add_argument("-a", "--noblock", dest="block", action="store_const", const=False)
        p.add_argument("--stream", dest="stream", action="store_const", const=True)
        p.add_argument("--no-stream", dest="stream", action="store_const", const=False)
        p.add_argument("-t", "--targets")
        p.add_argument("--verbose", dest="verbose", action="store_const", const=True)
        p.add_argument("--no-verbose", dest="verbose", action="store_const", const=False)
        p.add_argument("--progress-after", type=float)
        p.add_argument("--signal-on-interrupt")
    if output_args:
        p.add_argument("-r", dest="groupby", action="store_const", const="order")
        p.add_argument("-e", dest="groupby", action="store_const", const="engine")
        p.add_argument("--group-outputs", dest="groupby", choices=["engine", "order", "type"])
        p.add_argument("-o", "--out")
    if local:
        p.add_argument("--local", action="store_true")
    return p


class ParallelMagics:
    """The magics of one view: their defaults (set by ``%pxconfig``) and the last result."""

    def __init__(self, shell: Any, view: DirectView, suffix: str = "") -> None:
        self.shell = shell
        self.view = view
        self.suffix = suffix
        self.block = True
        self.stream = not noninteractive()
        self.verbose = False
        self.progress_after = 2.0
        self.signal_on_interrupt = "SIGINT"
        self.targets: Any = None
        self.groupby = "type"
        self.last: AsyncResult | None = None
        self.autopx_on = False

    # ---- the magics ------------------------------------------------------------------------

    def px(self, line: str, cell: str | None = None) -> Any:
        """%px CODE runs one line on the engines; %%px [options] runs the cell."""
        if cell is None:
            return self._run(line, self._parse(f"%px{self.suffix}", "", True, True, True))
        args = self._parse(f"%%px{self.suffix}", line, True, True, True)
        if args.local:
            self.shell.run_cell(cell)
        return self._run(cell, args)

    def pxresult(self, line: str) -> None:
        """Show the outputs and result of the last %px again."""
        args = self._parse(f"%pxresult{self.suffix}", line, False, True)
        if self.last is None:
            raise _usage_error("no %px result yet")
        self._show(self.last, args.groupby or self.groupby, streamed=False)

    def pxconfig(self, line: str) -> None:
        """Set the defaults of %px (block, stream, targets, verbose, progress, grouping)."""
        args = self._parse(f"%pxconfig{self.suffix}", line, True, True)
        for key in ("block", "stream", "verbose", "progress_after", "signal_on_interrupt"):
            value = getattr(args, key)
            if value is not None:
                setattr(self, key, value)
        if args.targets is not None:
            self.targets = self._targets(args.targets)
        if args.groupby is not None:
            self.groupby = args.groupby

    def autopx(self, line: str = "") -> None:
        """Toggle running every cell on the engines (run %autopx again to stop)."""
        transforms = self.shell.input_transformers_cleanup
        if self.autopx_on:
            transforms.remove(self._to_px)
            self.autopx_on = False
            print("%autopx disabled")
        else:
            transforms.append(self._to_px)
            self.autopx_on = True
            print(f"%autopx enabled: cells run on engines {self._resolved_targets()}")

    def _to_px(self, lines: list[str]) -> list[str]:
        cell = "".join(lines)
        if not cell.strip() or cell.lstrip().startswith(f"%autopx{self.suffix}"):
            return lines
        return [f"get_ipython().run_cell_magic({'px' + self.suffix!r}, '', {cell!r})\n"]

    # ---- running -------------------------------------------------------------------------

    def _parse(
        self, prog: str, line: str, exec_args: bool, output_args: bool, local: bool = False
    ) -> argparse.Namespace:
        return _parser(prog, exec_args, output_args, local).parse_args(shlex.split(line))

    def _targets(self, text: str) -> Any:
        if ":" in text:
            parts = [int(p) if p.strip() else None for p in text.split(":")]
            return slice(*parts)
        if text == "all":  # a word, not the builtin the shell would evaluate it to
            return "all"
        return self.shell.ev(text)

    def _resolved_targets(self, targets: Any = None) -> list[int]:
        chosen = targets if targets is not None else self.targets
        return self.view.engine_ids(chosen)

    def _run(self, code: str, args: argparse.Namespace) -> Any:
        targets = self._targets(args.targets) if args.targets else self.targets
        block = self.block if args.block is None else args.block
        stream = self.stream if args.stream is None else args.stream
        verbose = self.verbose if args.verbose is None else args.verbose
        groupby = args.groupby or self.groupby
        tg = self._resolved_targets(targets)
        if verbose:
            print(f"Parallel execution on engine(s): {tg}")
        ar = self.view.execute(code, silent=False, targets=tg, block=False)
        self.last = ar
        if args.out:
            self.shell.user_ns[args.out] = ar
        if not block:
            return ar
        self._wait(ar, tg, stream, args)
        self._show(ar, groupby, streamed=stream)
        return None

    def _wait(self, ar: AsyncResult, tg: list[int], stream: bool, args: argparse.Namespace) -> None:
        after = self.progress_after if args.progress_after is None else args.progress_after
        sig = args.signal_on_interrupt or self.signal_on_interrupt
        try:
            if stream:
                with ar.stream_output():
                    _wait_with_progress(ar, after)
            else:
                _wait_with_progress(ar, after)
        except KeyboardInterrupt:
            # Stopping the wait alone would leave the engines busy: interrupt them too.
            self.view.client.send_signal(sig, targets=tg)
            ar.wait(5)
            raise

    def _show(self, ar: AsyncResult, groupby: str, streamed: bool) -> None:
        ar.display_outputs(groupby, result_only=streamed)
        error = ar.exception(0)
        if error is not None:
            raise error


def _wait_with_progress(ar: AsyncResult, after: float) -> None:
    """Wait; after ``after`` seconds (never if negative) show a progress bar."""
    if after < 0:
        ar.wait()
        return
    if not ar.wait(after):
        with progress_bar(len(ar.msg_ids), "%px", None) as bar:
            while not ar.wait(0.1):
                bar.update(ar.progress)
            bar.update(ar.progress)


def _usage_error(message: str) -> Exception:
    error: type[Exception] = importlib.import_module("IPython.core.error").UsageError
    return error(message)


def activate(view: DirectView, suffix: str = "") -> ParallelMagics:
    """Register the parallel magics for ``view`` in the running IPython session."""
    try:
        get_ipython = importlib.import_module("IPython").get_ipython
    except ImportError:
        raise RuntimeError("activate needs IPython: pip install 'par-core[ipython]'") from None
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("activate needs a running IPython session (IPython or Jupyter)")
    magics = ParallelMagics(shell, view, suffix)
    shell.register_magic_function(magics.px, "line_cell", f"px{suffix}")
    shell.register_magic_function(magics.autopx, "line", f"autopx{suffix}")
    shell.register_magic_function(magics.pxresult, "line", f"pxresult{suffix}")
    shell.register_magic_function(magics.pxconfig, "line", f"pxconfig{suffix}")
    return magics
