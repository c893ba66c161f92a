"""Dependencies of load-balanced tasks: run after, or where, other tasks ran.

``after`` is a time dependency (start only once those tasks finished),
``follow`` a location dependency (run on an engine where they ran). Both
take message ids, AsyncResults or a :class:`Dependency`, which says whether
all or any of them must be met, and whether success, failure or both count.
The controller resolves them (``controller/dependencies.py``); payloads are
never read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Dependency(set[str]):
    """A set of message ids with the rule for when it is met."""

    def __init__(
        self,
        dependencies: Any = (),
        all: bool = True,
        success: bool = True,
        failure: bool = False,
    ) -> None:
        super().__init__(_msg_ids(dependencies))
        if not (success or failure):
            raise ValueError("a Dependency must count success, failure, or both")
        self.all = all
        self.success = success
        self.failure = failure

    def check(self, completed: Iterable[str], failed: Iterable[str] | None = None) -> bool:
        """Whether this dependency is met, given the ids of tasks that succeeded and failed."""
        return self._state(completed, failed) == "met"

    def unreachable(self, completed: Iterable[str], failed: Iterable[str] | None = None) -> bool:
        """Whether this dependency can no longer be met, given the ids of tasks that
        succeeded and failed."""
        return self._state(completed, failed) == "impossible"

    def _state(self, completed: Iterable[str], failed: Iterable[str] | None) -> str:
        if not self:
            return "met"
        from .controller.dependencies import resolve  # the controller's own rule

        ok, err = set(completed), set(failed or ())

        def outcome(msg_id: str) -> tuple[str, None]:
            return ("ok" if msg_id in ok else "error" if msg_id in err else "pending"), None

        return resolve(self.as_header(), outcome)[0]

    def as_header(self) -> dict[str, Any]:
        """The compact form the scheduler reads."""
        return {"ids": sorted(self), "all": self.all, "ok": self.success, "err": self.failure}

    def __repr__(self) -> str:
        rule = "all" if self.all else "any"
        return f"Dependency({sorted(self)}, {rule}, success={self.success}, failure={self.failure})"


def _msg_ids(deps: Any) -> list[str]:
    if deps is None:
        return []
    if isinstance(deps, str):
        return [deps]
    msg_ids = getattr(deps, "msg_ids", None)
    if msg_ids is not None:
        return list(msg_ids)
    out: list[str] = []
    for d in deps if isinstance(deps, Iterable) else [deps]:
        out.extend(_msg_ids(d))
    return out


def dependency_header(deps: Any) -> dict[str, Any] | None:
    """Header form of an ``after``/``follow`` value (None if empty)."""
    if deps is None:
        return None
    dep = deps if isinstance(deps, Dependency) else Dependency(deps)
    return dep.as_header() if dep else None
