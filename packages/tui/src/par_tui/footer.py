"""The footer: the keys that work now, rebuilt only when they change.

Textual's ``Footer`` builds its keys anew (a dozen widgets, each styled)
every time the screen says its bindings may have changed: on every focus
change, several times per tab switch, and whenever the app rechecks which
actions are enabled. Most of those times nothing it shows changed. This
footer compares what it would show with what it shows, and rebuilds only
when a key came, went, or was enabled or disabled.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class KeysFooter(Footer):
    """Footer that rebuilds its keys only when the keys shown changed."""

    def __init__(self, compact: bool = False) -> None:
        super().__init__(compact=compact)
        self._shown: tuple[tuple[str, str, bool], ...] | None = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        """Rebuild after the next refresh, if the keys shown differ by then."""
        self._bindings_ready = True
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        if not self.is_attached:
            return
        shown = tuple(
            (binding.key, binding.description, enabled)
            for _, binding, enabled, _ in self.screen.active_bindings.values()
            if binding.show
        )
        if shown != self._shown:
            self._shown = shown
            await self.recompose()
