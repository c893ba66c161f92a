"""What a client or a view remembers of the tasks it sent, bounded.

Each keeps the message ids of its latest ``HISTORY_LIMIT`` messages; its
``results`` map those ids to values (or errors) while the client's
``metadata`` lists them and the results that hold them are alive: a
result a view returned drops its own once it completes, as in ipyparallel
(see :mod:`par.client.ledger`), so a client that sends millions of tasks
stays small.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .ledger import Ledger

HISTORY_LIMIT = 10_000


class BoundedDict(OrderedDict[str, Any]):
    """A dict that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if len(self) > self.limit:
            self.popitem(last=False)

    def add(self, key: str, value: Any) -> None:
        """Set an entry without trimming: call :meth:`trim` after a batch."""
        OrderedDict.__setitem__(self, key, value)

    def trim(self) -> None:
        """Forget the oldest entries beyond the limit."""
        for _ in range(len(self) - self.limit):
            self.popitem(last=False)


class _Holder(weakref.ref[Any]):
    """A weak reference to a result, with the message ids it was known by."""

    __slots__ = ("ids",)
    ids: list[str]


class LiveResults:
    """Message id -> the result that holds it, while that result lives.

    A result is referred to weakly, once for all its messages: a
    ``WeakValueDictionary`` makes a reference an id, 100,000 more objects for the
    collector to walk while a map of 100,000 tasks is held. When the result goes, its
    reference's callback forgets the ids that still name it (a later result over
    some of them, fetched again, keeps its own).
    """

    def __init__(self) -> None:
        self._refs: dict[str, _Holder] = {}
        self._forget = self._gone  # one bound method for every reference's callback

    def add(self, ar: Any) -> None:
        """Know ``ar`` by each of its message ids while it lives."""
        ref = _Holder(ar, self._forget)
        ref.ids = ar.msg_ids
        self._refs.update(dict.fromkeys(ar.msg_ids, ref))

    def _gone(self, ref: _Holder) -> None:
        refs = self._refs
        for mid in ref.ids:
            if refs.get(mid) is ref:
                refs.pop(mid, None)

    def get(self, msg_id: str) -> Any:
        """The live result known by ``msg_id``, or None."""
        ref = self._refs.get(msg_id)
        return None if ref is None else ref()

    def pop(self, msg_id: str) -> Any:
        """Forget ``msg_id``; the live result it named, or None."""
        ref = self._refs.pop(msg_id, None)
        return None if ref is None else ref()

    def __contains__(self, msg_id: object) -> bool:
        ref = self._refs.get(msg_id)  # type: ignore[call-overload]
        return ref is not None and ref() is not None

    def __iter__(self) -> Iterator[str]:
        return iter([mid for mid, ref in list(self._refs.items()) if ref() is not None])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class MetadataView(MutableMapping[str, Any]):
    """A client's ``metadata``: the records of its outstanding messages, made as they are
    read (see :mod:`par.client.asyncresult`), and those ``kept`` past their results
    (fetched without owning them, or given a value by hand)."""

    def __init__(self, kept: BoundedDict, pending: Mapping[str, Any]) -> None:
        self.kept = kept
        self._pending = pending  # message id -> its result, until answered

    @property
    def limit(self) -> int:
        """How many records past their results it keeps, at most."""
        return self.kept.limit

    def __getitem__(self, msg_id: str) -> Any:
        md = self.kept.get(msg_id)
        if md is not None:
            return md
        ar = self._pending.get(msg_id)
        if ar is None:
            raise KeyError(msg_id)
        return ar.metadata_of(msg_id)

    def __contains__(self, msg_id: object) -> bool:
        return msg_id in self.kept or msg_id in self._pending

    def __setitem__(self, msg_id: str, md: Any) -> None:
        self.kept[msg_id] = md

    def __delitem__(self, msg_id: str) -> None:
        del self.kept[msg_id]

    def pop(self, msg_id: str, *default: Any) -> Any:
        """Forget a kept record (an outstanding message's stays with its result)."""
        return self.kept.pop(msg_id, *default)

    def __iter__(self) -> Iterator[str]:
        kept = list(self.kept)
        listed = set(kept)
        return iter(kept + [m for m in list(self._pending) if m not in listed])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class Results(MutableMapping[str, Any]):
    """Finished results by message id: a client's (from its ledger), or (with ``scope``,
    the message ids a view sent) one view's.

    As ipyparallel's ``rc.results`` is a dict, a value can be set under a message id (it
    gets a metadata record, as every result has) and deleted; ``purge_local_results``
    forgets it like any other.
    """

    def __init__(self, ledger: Ledger, scope: Mapping[str, Any] | None = None) -> None:
        self._ledger = ledger
        self._scope = scope

    def _finished(self) -> list[str]:
        ledger = self._ledger
        known, pending, given, kept = ledger.known, ledger.pending, ledger.given, ledger.kept
        ids = ledger.metadata if self._scope is None else self._scope
        return [
            m for m in list(ids) if (m in kept and m in known and m not in pending) or m in given
        ]

    def __getitem__(self, msg_id: str) -> Any:
        ledger = self._ledger
        if self._scope is not None and msg_id not in self._scope:
            raise KeyError(msg_id)
        if msg_id in ledger.given:
            return ledger.given[msg_id]
        ar = ledger.known.get(msg_id)
        if ar is None or msg_id not in ledger.kept or msg_id in ledger.pending:
            raise KeyError(msg_id)
        return ar.value_of(msg_id)

    def __setitem__(self, msg_id: str, value: Any) -> None:
        if msg_id in self._ledger.pending:
            raise KeyError(f"{msg_id} is outstanding: its result is on its way")
        self._ledger.give(msg_id, value)

    def __delitem__(self, msg_id: str) -> None:
        if msg_id not in self:
            raise KeyError(msg_id)
        self._ledger.forget_finished({msg_id})

    def __iter__(self) -> Iterator[str]:
        return iter(self._finished())

    def __len__(self) -> int:
        return len(self._finished())
