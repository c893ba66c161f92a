"""Whether each of an engine's tasks runs or is aborted, decided once, by two threads.

The main thread claims a task when it is about to run it; the control thread
claims it for an abort the controller passed on, while the main thread may be
busy with another task and the aborted one still waits in a queue or a
socket. Whichever claim comes first wins (one ``dict.setdefault``, atomic
under the GIL): a task the control thread reports aborted never runs, and a
task that started is never reported aborted. So an abort takes effect at
once, even behind a task that runs for hours.

The claims of the last ``RECENT`` tasks run are kept, so that an abort that
crosses a finished task's reply on the way is refused; an abort claim is
dropped when its task comes to be skipped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

RECENT = 4096
RUN, ABORT = True, False


class Claims:
    """The run-or-abort decision of each task an engine was given."""

    def __init__(self, recent: int = RECENT) -> None:
        self._claims: dict[str, bool] = {}
        self._ran: deque[str] = deque()
        self._recent = recent

    def run(self, msg_id: str) -> bool:
        """Claim a task for running (main thread); False if it was aborted first."""
        claims = self._claims
        if claims.setdefault(msg_id, RUN) is ABORT:
            del claims[msg_id]
            return False
        ran = self._ran
        ran.append(msg_id)
        if len(ran) > self._recent:
            claims.pop(ran.popleft(), None)
        return True

    def abort(self, msg_ids: Iterable[str]) -> list[str]:
        """Claim tasks for an abort (control thread); return those that will never run."""
        claims = self._claims
        return [mid for mid in map(str, msg_ids) if claims.setdefault(mid, ABORT) is ABORT]
