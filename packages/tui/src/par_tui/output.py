"""The output view: the tail of the selected engine's stdout and stderr."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import var
from textual.widgets import RichLog

from .state import OutputLine, Snapshot


class EngineOutput(RichLog):
    """What the selected engine's tasks printed (stderr in red), newest at the bottom."""

    DEFAULT_CSS = """
    EngineOutput {
        height: 1fr;
        border: round $primary 40%;
        padding: 0 1;
    }
    """

    snapshot: var[Snapshot | None] = var(None)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, max_lines=2000, **kwargs)  # type: ignore[arg-type]
        self._engine: int | None = None
        self._total = 0
        self._last: OutputLine | None = None  # the last line written, to notice it grew

    def watch_snapshot(self, snapshot: Snapshot | None) -> None:
        """Append what is new (or start over when another engine is selected)."""
        if snapshot is None:
            return
        engine = snapshot.output_engine
        title = (
            "output (choose an engine in the Engines tab)"
            if engine is None
            else f"output of engine {engine} (choose another in the Engines tab)"
        )
        if title != self.border_title:
            self.border_title = title
        new = snapshot.output_total - self._total
        out = snapshot.output
        last = out[-1] if out else None
        if engine == self._engine and new == 0 and last is self._last:
            return
        # Append only when the last line written is still in place: not when another engine
        # was chosen, old lines were dropped, or an unfinished line grew.
        if engine == self._engine and 0 < new < len(out) and out[-new - 1] is self._last:
            lines = out[-new:]
        else:
            self.clear()
            lines = out
            if engine is not None and not lines:
                self.write(Text("(no output from this engine yet)", style="dim"))
        self._engine, self._total = engine, snapshot.output_total
        self._last = last
        for line in lines:
            self.write(Text(line.text, style="red" if line.stream == "stderr" else ""))
