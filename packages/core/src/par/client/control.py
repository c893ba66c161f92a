"""What a client tells the engines and asks of their queues, as ipyparallel's Client does.

These are control operations, not tasks: nothing of them goes into the
client's ``history`` or ``metadata``. Each is one query to the controller
(:mod:`~par.client.queries`), which acts on its queues (``abort``,
``queue_status``, ``status``) or passes the word on each engine's control
connection (``clear``, ``send_signal``, ``shutdown``), ahead of the work
queued for it. :class:`EngineControl` is a part of
:class:`~par.client.client.Client`, working on the client's ledger and queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ledger import Ledger
    from .queries import Answered, Queries

CLEAR_WAIT = 60.0  # seconds clear(block=True) waits for the engines to answer
ABORT_BATCH = 100_000  # message ids an abort query names at most (about 2 MB of header)


class EngineControl:
    """The Client's control of engines and their queues (see the module's docstring):
    a base of :class:`~par.client.client.Client`, whose parts it uses."""

    ledger: Ledger
    queries: Queries
    block: bool

    def clear(self, targets: Any = None, block: bool | None = None) -> Answered | None:
        """Empty the namespaces of engines (all by default).

        A control message, as in ipyparallel: it goes ahead of the work queued for the
        engines, and is not a task (nothing in ``history`` or ``metadata``). ``block``
        (default ``rc.block``) waits until every engine has cleared (one busy in code that
        holds the GIL answers once it lets go; TimeoutError after ``CLEAR_WAIT`` seconds);
        else it returns a Future of it (of the engine ids), which can be awaited.
        """
        tg = None if targets in (None, "all") else self.ledger.targets(targets)
        done = self.queries.later("clear", targets=tg)
        if not (self.block if block is None else block):
            return done
        try:
            done.result(CLEAR_WAIT)
        except TimeoutError:
            raise TimeoutError(
                f"the engines did not all clear their namespaces within {CLEAR_WAIT} s: one "
                "may be running code that holds the GIL; is the cluster running? (`par list`)"
            ) from None
        return None

    def queue_status(self, targets: Any = "all", verbose: bool = False) -> dict[Any, Any]:
        """Per-engine queue counts and the number of unassigned tasks (``verbose``: lists of
        their message ids instead of counts, for ``queue``, ``tasks`` and ``unassigned``);
        for one engine id, that engine's counts alone."""
        raw = self.queries.ask("queue_status", verbose=verbose)
        if isinstance(targets, int):
            return dict(raw[str(self.ledger.targets(targets)[0])])
        out: dict[Any, Any] = {}
        wanted = None if targets in (None, "all") else set(self.ledger.targets(targets))
        for key, value in raw.items():
            if key == "unassigned":
                out[key] = value
            elif wanted is None or int(key) in wanted:
                out[int(key)] = value
        return out

    def abort(
        self,
        jobs: Any = None,
        targets: Any = None,
        block: bool | None = None,
        everyone: bool = False,
    ) -> None:
        """Abort tasks that have not started (all of this client's outstanding tasks by default).

        ``everyone=True`` aborts every client's queued tasks (what ``par monitor`` offers).
        """
        if everyone:
            self.queries.ask("abort", all=True)
            return
        ids = list(self.ledger.pending) if jobs is None else self.ledger.msg_ids(jobs)
        for lo in range(0, max(len(ids), 1), ABORT_BATCH):  # a query's header is bounded
            self.queries.ask("abort", ids=ids[lo : lo + ABORT_BATCH])

    def send_signal(self, sig: int | str, targets: Any = None, block: bool | None = None) -> None:
        """Send a signal (number or name such as 'SIGINT') to engine processes."""
        tg = None if targets is None else self.ledger.targets(targets)
        self.queries.ask("signal", sig=sig, targets=tg)

    def shutdown(
        self,
        targets: Any = "all",
        restart: bool = False,
        hub: bool = False,
        block: bool | None = None,
    ) -> None:
        """Stop engines (and the controller too with ``hub=True``)."""
        if restart:
            raise NotImplementedError(
                "restart engines through their cluster: Cluster.restart_engines()"
            )
        tg = None if targets in (None, "all") else self.ledger.targets(targets)
        stopped = self.queries.ask("shutdown", targets=tg, hub=hub)
        if block or (block is None and self.block) or hub:
            self.ledger.wait_until_gone(stopped, timeout=10)

    def status(self, timeout: float = 10.0, changed: bool = False) -> dict[str, Any]:
        """The controller's view of the cluster: engines, task counts, uptime, and in
        ``usage`` what the controller itself costs (``rss``: bytes resident in its processes,
        the relays included; ``cpu``: percent of one core since the previous reading).

        With ``changed`` (a monitor's poll), ``engines`` holds only the engines whose
        description changed since this client's previous ``changed`` call, ``engine_ids``
        every engine's id, and ``late`` ``[id, seconds]`` the heartbeats a second or more
        behind (the other engines' heartbeats are fresh).

        Raises TimeoutError if the controller does not answer within ``timeout`` seconds.
        """
        return dict(self.queries.ask("status", timeout=timeout, changed=changed))
