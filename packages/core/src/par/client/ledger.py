"""The client's ledger: its requests, their results and metadata, and the engines.

Every part of a client keeps its books here rather than in the client
object: the user's threads register a request's result before sending it
(so no reply can come early) and note it once sent; the thread receiving
(see :mod:`par.client.io`) looks each reply's result up in ``pending`` and
follows the cluster's events into ``engines``; results wait on ``arrivals``
and the client's history and ``results`` read what is ``known``.

As in ipyparallel, the result a request returns *owns* its messages: the
client's ``metadata`` lists them while they are outstanding (a view of
``pending``), and neither it nor ``results`` once they completed. The result
keeps its own values and metadata, and ``get_result`` still finds it in
``known`` while it lives, or the controller's copy after. A result fetched
without owning its messages (``owner=False``) has their records ``kept``,
listed until purged.

Two conditions order the threads: ``arrivals``, notified at every reply a
result takes in and the condition of every result as a Future (one shared
condition: one per result would cost more than the task), and
``engines_changed``, which guards ``engines``. ``pending`` and ``known`` (its
weak references in one) are plain dicts, each changed by one operation at a
time (Python's own lock keeps a dict whole).
"""

from __future__ import annotations

import operator
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ..errors import NoEnginesRegistered
from .asyncresult import AsyncResult, MessageFuture
from .history import HISTORY_LIMIT, BoundedDict, LiveResults, MetadataView
from .replies import Metadata, new_metadata


def not_engine_ids(targets: Any) -> TypeError:
    """The error for ``targets`` that name no engines by id."""
    hint = f"; for a variable on the engines use rc[:][{targets!r}]"
    hint = hint if isinstance(targets, str) else ""
    return TypeError(
        f"engines are named by integer ids (one, a slice or a list), not {targets!r}{hint}"
    )


class Ledger:
    """What a client sent, what is outstanding, and the engines it knows."""

    def __init__(self) -> None:
        self.pending: dict[str, AsyncResult] = {}  # message id -> its result, until answered
        self.known = LiveResults()  # message id -> its result, while the result lives
        self.kept = BoundedDict(HISTORY_LIMIT)  # message id -> Metadata kept past its result
        self.metadata = MetadataView(self.kept, self.pending)  # what ``rc.metadata`` lists
        self.given = BoundedDict(HISTORY_LIMIT)  # message id -> a value set in ``results``
        self.history: deque[str] = deque(maxlen=HISTORY_LIMIT)  # message ids sent, oldest first
        self.arrivals = threading.Condition()  # notified as replies reach their results
        self.engines: dict[int, dict[str, Any]] = {}  # registered engine id -> what it reported
        self.gone: dict[int, int] = {}  # lost engine id -> pid, to explain EngineErrors
        self.engines_changed = threading.Condition()  # guards ``engines``

    # ---- requests ----------------------------------------------------------------------------

    def records_for(self, ar: MessageFuture, submitted: float) -> list[Metadata]:
        """The metadata records of ``ar``'s messages: those kept here, else those of
        another result holding them, else new ones, submitted at ``submitted``."""
        kept, known, pending, out = self.kept, self.known, self.pending, []
        for mid in ar.msg_ids:
            md = kept.get(mid)
            if md is None:
                source = known.get(mid) or pending.get(mid)
                if source is not None and source is not ar:
                    md = source.metadata_of(mid)
                else:
                    md = new_metadata(mid, submitted)
            out.append(md)
        return out

    def metadata_for(self, msg_id: str) -> Metadata:
        """The metadata record of a message: the one listed, else one a result holds, else
        a new one, kept."""
        md = self.metadata.get(msg_id)
        if md is None:
            source = self.known.get(msg_id)
            md = source.metadata_of(msg_id) if source is not None else None
        if md is None:
            md = self.kept[msg_id] = new_metadata(msg_id, time.time())
        return md

    def give(self, msg_id: str, value: Any) -> None:
        """Set a value in ``results`` by hand (with a metadata record, as every result has)."""
        self.kept[msg_id] = self.metadata_for(msg_id)
        self.given[msg_id] = value

    def expect(self, ar: AsyncResult, owner: bool = True) -> None:
        """Wait for replies to ``ar``'s messages: each resolves ``ar`` (see :meth:`own`)."""
        self.own(ar, owner)
        self.pending.update(dict.fromkeys(ar.msg_ids, ar))  # at once: Ctrl-C cannot split it

    def own(self, ar: AsyncResult, owner: bool) -> None:
        """Whether ``ar`` owns its messages: its owner lists them in ``metadata`` (and so
        ``results``) only while they are outstanding; a result that does not own them
        keeps them listed after it completes, until purged."""
        ar.owner = owner
        if not owner:
            kept = self.kept
            for mid, md in zip(ar.msg_ids, ar.metadata_list(), strict=True):
                kept.add(mid, md)
            kept.trim()

    def sent(self, ar: AsyncResult) -> None:
        """Note ``ar``'s messages as sent: in the history, and known while ``ar`` lives."""
        self.known.add(ar)
        self.history.extend(ar.msg_ids)

    def hold(self, ar: AsyncResult) -> None:
        """Keep a result fetched from the controller known while ``ar`` lives (not in the
        history: this client did not send it)."""
        self.known.add(ar)

    def forget(self, msg_ids: list[str]) -> None:
        """Forget messages registered for a request that was never run."""
        gone = set(msg_ids)
        for mid in msg_ids:
            self.pending.pop(mid, None)
            self.known.pop(mid)
            self.kept.pop(mid, None)
        kept = [m for m in self.history if m not in gone]
        self.history.clear()
        self.history.extend(kept)

    def outstanding(self, jobs: Any = None) -> list[Future[Any]]:
        """The results still to wait for, of ``jobs`` (AsyncResults or other futures,
        message ids, indices into ``history``; None: every outstanding one)."""
        if jobs is None:
            return list({id(ar): ar for ar in list(self.pending.values())}.values())
        out = []
        for job in [jobs] if isinstance(jobs, Future | str | int) else jobs:
            if isinstance(job, int):
                job = self.history[job]
            ar = self.pending.get(job) if isinstance(job, str) else job
            if ar is not None:
                out.append(ar)
        return out

    def ran_on(self, engine_ids: list[int]) -> list[str]:
        """The messages whose metadata says they ran on one of ``engine_ids``."""
        engines = set(engine_ids)
        return [m for m, md in list(self.metadata.items()) if md["engine_id"] in engines]

    def forget_finished(self, msg_ids: set[str]) -> None:
        """Forget the results and metadata of finished messages; raises RuntimeError,
        forgetting nothing, if one of them is still outstanding."""
        running = msg_ids & set(self.pending)
        if running:
            raise RuntimeError(
                f"cannot purge {len(running)} outstanding task(s), e.g. {min(running)}; "
                "wait for them (or abort them) first"
            )
        for mid in msg_ids:
            self.kept.pop(mid, None)
            self.known.pop(mid)
            self.given.pop(mid, None)

    def msg_ids(self, jobs: Any) -> list[str]:
        """The message ids of jobs: message ids, indices into ``history``, AsyncResults,
        or a collection of them."""
        if isinstance(jobs, int):
            return [self.history[jobs]]
        if isinstance(jobs, str):
            return [jobs]
        if isinstance(jobs, AsyncResult):
            return list(jobs.msg_ids)
        out: list[str] = []
        for job in jobs:
            out.extend(self.msg_ids(job))
        return out

    # ---- engines -----------------------------------------------------------------------------

    def engines_are(self, engines: list[dict[str, Any]]) -> None:
        """Take the controller's list of registered engines."""
        with self.engines_changed:
            for e in engines:
                self.engines[int(e["id"])] = e
            self.engines_changed.notify_all()

    def engine_up(self, engine: dict[str, Any]) -> None:
        """An engine registered."""
        with self.engines_changed:
            self.engines[int(engine["id"])] = engine
            self.engines_changed.notify_all()

    def engine_gone(self, engine: dict[str, Any]) -> None:
        """An engine was lost or stopped."""
        with self.engines_changed:
            self.engines.pop(int(engine["id"]), None)
            self.gone[int(engine["id"])] = int(engine.get("pid", 0))
            self.engines_changed.notify_all()

    def engines_unknown(self) -> None:
        """Forget the engines until a controller tells again (it went silent)."""
        with self.engines_changed:
            self.engines.clear()
            self.engines_changed.notify_all()

    @property
    def ids(self) -> list[int]:
        """Ids of the engines registered, in order."""
        with self.engines_changed:
            return sorted(self.engines)

    def targets(self, targets: Any) -> list[int]:
        """The engine ids ``targets`` names ('all' or None, an id, a slice of the registered
        ones, or a list of ids); raises if it names no engine or one not registered."""
        if type(targets) is int and targets >= 0 and targets in self.engines:
            return [targets]  # the common case, without sorting every engine's id
        ids = self.ids
        if targets is None or targets == "all":
            if not ids:
                raise NoEnginesRegistered(
                    "no engines are registered; start some (`par engines -n N`) or wait with "
                    "rc.wait_for_engines(n)"
                )
            return ids
        if isinstance(targets, int):
            if targets < 0:
                targets = ids[targets]
            if targets not in ids:
                raise IndexError(f"no such engine: {targets} (registered: {ids})")
            return [targets]
        if isinstance(targets, slice):
            chosen = ids[targets]
            if not chosen:
                raise NoEnginesRegistered(f"the slice {targets} selects none of the engines {ids}")
            return chosen
        try:
            out = [operator.index(t) for t in targets]
        except TypeError:
            raise not_engine_ids(targets) from None
        if not out:
            raise NoEnginesRegistered("an empty list of targets: name at least one engine")
        known = set(ids)  # a view of 10,000 engines names 10,000: no scan of the list for each
        missing = [t for t in out if t not in known]
        if missing:
            raise IndexError(f"no such engines: {missing} (registered: {ids})")
        return out

    def wait_for_engines(
        self, n: int | None, timeout: float | None, check: Callable[[], None], why: str = ""
    ) -> None:
        """Wait until at least ``n`` engines are registered (all current ones if None);
        ``check()`` runs at each wake-up and raises to stop the wait (the client closed);
        ``why`` ends the message of a timeout (see :func:`par.openfiles.room_hint`)."""
        with self.engines_changed:
            want = n if n is not None else max(len(self.engines), 1)
            deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
            while len(self.engines) < want:
                check()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"{len(self.engines)} of {want} engines registered within {timeout} s" + why
                    )
                self.engines_changed.wait(left if left is None else min(left, 1.0))

    def wait_until_gone(self, engine_ids: list[int], timeout: float) -> None:
        """Wait up to ``timeout`` seconds until none of ``engine_ids`` is registered."""
        deadline = time.monotonic() + timeout
        with self.engines_changed:
            while set(engine_ids) & set(self.engines) and time.monotonic() < deadline:
                self.engines_changed.wait(0.2)
