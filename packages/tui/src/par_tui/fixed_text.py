"""Text in a box of fixed size, redrawn when it changes without laying the screen out again.

Textual's ``Static`` and ``Label`` size themselves to their content, so every
update lays out the whole screen: a few milliseconds each time a counter
moves. Panels whose size does not depend on the text use this instead.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget


class FixedText(Widget):
    """Text shown as it is, its size set by CSS."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = Text()

    def show(self, text: Text | str) -> None:
        """Show new text, if it is new."""
        text = Text(text) if isinstance(text, str) else text
        if text != self.text:
            self.text = text
            self.refresh()

    def render(self) -> Text:
        """The text."""
        return self.text
