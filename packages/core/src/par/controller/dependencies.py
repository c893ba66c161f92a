"""Load-balanced tasks that wait for others: ``after`` and ``follow`` dependencies.

A task with dependencies (see :mod:`par.dependency`) is judged when it
arrives: its dependencies are met (it goes to the task queue), cannot be
(it fails with ImpossibleDependency, or InvalidDependency for a message id
the controller does not know), or it must wait. A waiting task is judged
again each time a task it depends on finishes, and fails once its timeout
passes. A ``follow`` dependency met narrows the engines the task may run
on to those where its dependencies ran.

Only the ledger's books are read (whether each task is pending, and how it
ended and where); no payload ever is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from .engines import Pending
from .ledger import Ledger
from .scheduler import TaskScheduler

Outcome = Callable[[str], tuple[str, int | None]]


def resolve(dep: dict[str, Any], outcome: Outcome) -> tuple[str, list[int]]:
    """Whether a dependency is 'met', must 'wait' or is 'impossible'/'invalid', and the
    engines the counted dependencies ran on.

    ``outcome(msg_id)`` answers ('ok' | 'error' | 'pending' | 'unknown', engine id).
    """
    want_ok, want_err, need_all = dep.get("ok", True), dep.get("err", False), dep.get("all", True)
    counted: list[int] = []
    met = failed = waiting = 0
    for mid in dep.get("ids", []):
        state, engine = outcome(mid)
        if state == "unknown":
            return "invalid", []
        if state == "pending":
            waiting += 1
        elif (state == "ok" and want_ok) or (state == "error" and want_err):
            met += 1
            if engine is not None:
                counted.append(engine)
        else:
            failed += 1
    if need_all:
        if failed:
            return "impossible", counted
        return ("wait" if waiting else "met"), counted
    if met:
        return "met", counted
    return ("wait" if waiting else "impossible"), counted


def verdict_error(verdict: str) -> tuple[str, str]:
    """The error a task gets when its dependencies cannot be met."""
    if verdict == "invalid":
        return "InvalidDependency", "it depends on a message id the controller does not know"
    return "ImpossibleDependency", "its dependencies failed, or no engine can run it"


def _common(engines: list[int]) -> set[int]:
    """Engines every counted dependency ran on (they ran one each, so: all the same one)."""
    return set(engines) if len(set(engines)) <= 1 else set()


class Dependencies:
    """The tasks waiting for their dependencies, and which finished tasks they wait for."""

    def __init__(self, ledger: Ledger, tasks: TaskScheduler) -> None:
        self.ledger = ledger
        self.tasks = tasks
        self.waiting: dict[str, Pending] = {}  # by message id
        self.dependents: dict[str, set[str]] = {}  # msg id -> waiting tasks that depend on it

    def hold(self, p: Pending) -> None:
        """Queue a task whose dependencies are met, fail one whose cannot be, or hold it."""
        verdict = self._verdict(p)
        if verdict == "wait":
            self.waiting[p.msg_id] = p
            for dep in (p.after, p.follow):
                for dep_id in (dep or {}).get("ids", []):
                    self.dependents.setdefault(dep_id, set()).add(p.msg_id)
        elif verdict == "met":
            self.tasks.submit(p)
        else:
            self.ledger.pending.pop(p.msg_id, None)
            self.ledger.fail(p, *verdict_error(verdict), None)

    def _verdict(self, p: Pending) -> str:
        states = []
        for kind, dep in (("after", p.after), ("follow", p.follow)):
            if not dep:
                continue
            state, where = resolve(dep, self.ledger.outcome)
            states.append(state)
            if kind == "follow" and state == "met":
                places = set(where) if not dep.get("all", True) else _common(where)
                p.allowed = places if p.allowed is None else p.allowed & places
        for state in ("invalid", "impossible", "wait"):
            if state in states:
                return state
        if p.allowed is not None and not p.allowed:
            return "impossible"
        return "met"

    def finished(self, done_id: str) -> None:
        """Judge again the tasks that wait for one that finished (one of :attr:`dependents`)."""
        for mid in self.dependents.pop(done_id, set()):
            p = self.waiting.get(mid)
            if p is None:
                continue
            verdict = self._verdict(p)
            if verdict == "wait":
                continue
            del self.waiting[mid]
            if verdict == "met":
                self.tasks.submit(p)
            else:
                self.ledger.pending.pop(mid, None)
                self.ledger.fail(p, *verdict_error(verdict), None)

    def check_deadlines(self) -> None:
        """Fail the waiting tasks whose timeout has passed."""
        now = time.monotonic()
        for mid, p in list(self.waiting.items()):
            if p.deadline is not None and now > p.deadline:
                del self.waiting[mid]
                self.ledger.pending.pop(mid, None)
                self.ledger.fail(
                    p, "TaskTimeout", "dependencies were not met within the timeout", None
                )

    def take(self, msg_ids: Iterable[str]) -> list[Pending]:
        """Take waiting tasks out (for abort); return those found."""
        return [self.waiting.pop(mid) for mid in msg_ids if mid in self.waiting]
