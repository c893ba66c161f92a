"""Results looked up in the controller's task records: :class:`AsyncHubResult`.

``Client.get_result`` and ``Client.resubmit`` return one: a result over
messages this client may never have sent, filled in from the replies the
controller kept (their output recorded afresh) or, for messages still
running, from the replies the controller sends on as they come.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .asyncresult import AsyncResult
from .outputs import record_reply
from .replies import Reply, error_reply, utc

if TYPE_CHECKING:
    from .client import Client


class AsyncHubResult(AsyncResult):
    """Results looked up in the controller's task records, including other clients' tasks.

    Built from the replies the controller holds, one :class:`Reply` per finished
    message (headers as an engine's reply, optionally with ``sub``: the
    submission time). While messages are still pending there, a helper thread
    asks again every ``interval`` seconds through ``fetch(msg_ids)``, which
    returns the replies that are ready by then. Without ``replies`` and
    ``fetch`` it fills in like any AsyncResult, from replies the client's
    receiving thread delivers.
    """

    def __init__(
        self,
        client: Client,
        msg_ids: list[str],
        replies: Mapping[str, Reply] | None = None,
        fetch: Callable[[list[str]], Mapping[str, Reply]] | None = None,
        interval: float = 0.2,
        fname: str = "get_result",
    ) -> None:
        super().__init__(client, msg_ids, fname, single=len(msg_ids) == 1)
        for mid, reply in (replies or {}).items():
            self._take(mid, reply)
        if fetch is not None and not self.done():
            threading.Thread(
                target=self._poll, args=(fetch, interval), name="par-hub-result", daemon=True
            ).start()

    def _take(self, mid: str, reply: Reply) -> None:
        h = reply.header
        md = self.metadata_of(mid)
        if h.get("sub") is not None:
            md["submitted"] = utc(h["sub"])
        md.update(stdout="", stderr="", outputs=[], execute_result=None, data={})
        md.positions = []
        reply = record_reply(md, reply)
        reply.received = time.time()
        self.deliver(mid, reply)  # which records the rest (see record_answer)

    def _poll(self, fetch: Callable[[list[str]], Mapping[str, Reply]], interval: float) -> None:
        while not self.done():
            pending = [m for m in self.msg_ids if m not in self._replies]
            try:
                found = fetch(pending)
            except Exception as exc:  # the client closed or the controller went away
                for mid in pending:
                    self._take(mid, error_reply(mid, type(exc).__name__, str(exc)))
                return
            for mid, reply in found.items():
                if mid not in self._replies:
                    self._take(mid, reply)
            time.sleep(interval)
