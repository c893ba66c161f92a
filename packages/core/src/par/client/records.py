"""What a client asks of the controller's task records, as ipyparallel's Client does.

The controller keeps a record of every task (in memory, or in SQLite) with
its request and result, within its bounds. From them a client gets the
results of any client's tasks (:meth:`~HubRecords.get_result`), runs tasks
again (``resubmit``), asks their status, queries them (``db_query``) and
purges them. Results this client still holds are answered from its own
ledger without asking. :class:`HubRecords` is a part of
:class:`~par.client.client.Client`, working on the client's ledger,
submitter and queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ..errors import ParError
from . import taskrecords
from .asyncresult import AsyncResult
from .hubresult import AsyncHubResult

if TYPE_CHECKING:
    from .client import Client
    from .ledger import Ledger
    from .queries import Queries
    from .submit import Submitter


def nothing(jobs: Any) -> bool:
    """True for "no jobs / no targets" (None or an empty collection; 0 is an index)."""
    return jobs is None or (isinstance(jobs, list | tuple | set | frozenset) and not jobs)


class HubRecords:
    """The Client's methods on the controller's task records (see the module's docstring):
    a base of :class:`~par.client.client.Client`, whose parts it uses."""

    ledger: Ledger
    submitter: Submitter
    queries: Queries
    block: bool

    def _client(self) -> Client:
        return cast("Client", self)  # the one class built on this one

    def get_result(
        self, indices_or_msg_ids: Any = None, block: bool | None = None, owner: bool = True
    ) -> Any:
        """The result of earlier tasks, by message id or index into ``history``, from any client.

        Results still held here (while an AsyncResult holding them lives) are returned from
        memory; others are fetched from the controller's records (which keep the latest
        results within their bounds). ``owner``: as in ipyparallel, the result drops its
        messages from ``results`` and ``metadata`` once complete (``False`` keeps them).
        """
        ids = self.ledger.msg_ids(indices_or_msg_ids if indices_or_msg_ids is not None else -1)
        held = self._held(ids, owner)
        if held is not None:
            return held.get() if block else held
        status = self.queries.ask("result_status", ids=ids)
        if status["unknown"]:
            raise KeyError(
                f"no record of message(s) {', '.join(status['unknown'])} on the controller"
            )
        ar = AsyncHubResult(self._client(), ids)
        self.ledger.expect(ar, owner)
        self.ledger.hold(ar)  # fetched once: asked again, it is answered from here
        resent = self.queries.ask("resend", ids=ids)
        if resent["unknown"]:  # finished, but its result is not kept: nothing will come
            for mid in ids:
                self.ledger.pending.pop(mid, None)
            raise KeyError(
                f"no result of message(s) {', '.join(resent['unknown'])} on the controller: "
                "not kept (larger than its --max-record-bytes, or lost with a controller "
                "that crashed before writing it)"
            )
        return ar.get() if block else ar

    def _held(self, ids: list[str], owner: bool) -> AsyncResult | None:
        """A result over ``ids`` from those held here, or None if one of them is not: the
        result that sent exactly them, else a plain AsyncResult that fills in from theirs
        (also from results fetched earlier from the controller)."""
        known = self.ledger.known
        held = [ar for ar in map(known.get, ids) if ar is not None]
        if not ids or len(held) != len(ids):
            return None
        first = held[0]
        if not isinstance(first, AsyncHubResult) and set(first.msg_ids) == set(ids):
            return first
        ar = AsyncResult(self._client(), ids, "get_result", single=len(ids) == 1)
        self.ledger.own(ar, owner)
        for mid, source in zip(ids, held, strict=True):
            source.forward(mid, ar)
        return ar

    def resubmit(
        self,
        indices_or_msg_ids: Any = None,
        metadata: dict[str, Any] | None = None,
        block: bool | None = None,
    ) -> Any:
        """Run finished (or failed) tasks again, from the requests the controller kept.

        Tasks are named by message id, index into ``history`` (default: the last) or
        AsyncResult. Each runs under a new message id: a load-balanced task goes through
        the task scheduler again, a direct one to the engine it ran on. The original's
        record then has ``resubmitted``: the new id. Returns an :class:`AsyncHubResult`
        over the new tasks (their values with ``block=True``). ``metadata`` is accepted
        for ipyparallel code and, as there, unused.

        Raises ParError, running nothing, if a task is unknown to the controller, still
        pending, kept without its request, or a direct one whose engine is gone.
        """
        ids = self.ledger.msg_ids(indices_or_msg_ids if indices_or_msg_ids is not None else -1)
        if not ids:
            raise ValueError("resubmit needs at least one task")
        submit = self.submitter
        client = self._client()
        ar = submit.new_result(len(ids), lambda new: AsyncHubResult(client, new, fname="resubmit"))
        try:
            self.ledger.expect(ar)
            self.queries.ask("resubmit", ids=ids, new=ar.msg_ids)
        except BaseException:
            submit.unregister(ar.msg_ids)
            raise
        self.ledger.sent(ar)
        return ar.get() if (self.block if block is None else block) else ar

    def result_status(self, msg_ids: Any, status_only: bool = True) -> dict[str, Any]:
        """Which of the given tasks are pending and which completed (and their records)."""
        status = self.queries.ask("result_status", ids=self.ledger.msg_ids(msg_ids))
        if status_only:
            return {k: status[k] for k in ("pending", "completed", "unknown")}
        return dict(status)

    def purge_local_results(self, jobs: Any = (), targets: Any = ()) -> None:
        """Forget results and metadata held here: of ``jobs`` (message ids, indices,
        AsyncResults, or 'all'), and of the tasks that ran on ``targets``.

        Results the controller still keeps can be fetched again with :meth:`get_result`.
        Raises RuntimeError if any of them is still outstanding.
        """
        if nothing(jobs) and nothing(targets):
            raise ValueError("purge_local_results needs jobs, targets, or 'all'")
        ledger = self.ledger
        if jobs == "all":
            ids = set(ledger.metadata) | set(ledger.known) | set(ledger.given)
        else:
            ids = set(() if nothing(jobs) else ledger.msg_ids(jobs))
            if not nothing(targets):
                ids.update(ledger.ran_on(ledger.targets(targets)))
        ledger.forget_finished(ids)

    def purge_hub_results(self, jobs: Any = (), targets: Any = ()) -> int:
        """Forget finished tasks' records on the controller: of ``jobs`` (message ids,
        indices, AsyncResults, or 'all') and of the tasks that ran on ``targets``.

        Returns how many records the controller dropped. Raises ParError if one of
        ``jobs`` is still pending.
        """
        if nothing(jobs) and nothing(targets):
            raise ValueError("purge_hub_results needs jobs, targets, or 'all'")
        if jobs == "all" or targets == "all":
            return int(self.queries.ask("purge"))
        ids = None if nothing(jobs) else self.ledger.msg_ids(jobs)
        running = [mid for mid in ids or () if mid in self.ledger.pending]
        if running:  # known here at once; the controller may not have the request yet
            raise ParError(f"task {running[0]} is still pending; wait for it before purging it")
        tg = None if nothing(targets) else self.ledger.targets(targets)
        return int(self.queries.ask("purge", ids=ids, targets=tg))

    def purge_results(self, jobs: Any = (), targets: Any = ()) -> int:
        """Forget finished tasks here and on the controller (``purge_local_results`` then
        ``purge_hub_results``); returns how many records the controller dropped."""
        self.purge_local_results(jobs, targets)
        return self.purge_hub_results(jobs, targets)

    def purge_everything(self) -> None:
        """Forget every finished task, here and on the controller, and clear ``history``."""
        self.purge_results("all")
        self.ledger.history.clear()

    def hub_history(self) -> list[str]:
        """Message ids of every task the controller still has a record of, oldest first."""
        return list(self.queries.ask("history"))

    def db_query(
        self, query: dict[str, Any], keys: str | list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Task records matching a Mongo-style query ($in $nin $eq $ne $gt $gte $lt $lte $glob).

        Keys, as ipyparallel's TaskRecord: msg_id, header, content, buffers, submitted,
        client_uuid, engine_uuid, started, completed, resubmitted, result_header,
        result_content, result_buffers, queue ('mux' or 'task'), execute_input,
        execute_result, error, stdout, stderr, label; and par's: engine_id, status, ename,
        method, client. ``keys`` picks some (msg_id is always there); by default all but
        ``buffers`` and ``result_buffers`` (the request's and the result's frames, as
        bytes). Times are datetimes, and a query may compare them with datetimes.
        """
        if not isinstance(query, dict):
            raise TypeError(f"db_query needs a dict query, not {type(query).__name__}")
        wanted = [keys] if isinstance(keys, str) else keys
        _, payload = self.queries.ask_frames(
            "db_query", 10.0, {"query": taskrecords.plain_query(query), "keys": wanted}
        )
        return taskrecords.records_of(payload)
