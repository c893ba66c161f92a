"""Turning calls into requests: message ids, headers, pickles, and the way each goes.

Views hand the :class:`Submitter` a function and its calls. It pickles the
function once, names each message (this client's random prefix and a count:
unique across clients and far cheaper than a uuid per task), and registers
the result in the ledger *before* anything is sent, so that no reply can come
early. A direct request goes through the controller's direct device or its
hub (see :mod:`par.client.paths`); load-balanced tasks of one function travel
up to ``TASK_BATCH`` a message (a task batch, see :mod:`par.messages`), and
the controller still schedules each on its own. The outbox
(:mod:`par.client.outbox`) decides when each request leaves.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .. import messages, serialize
from ..protocol import nbytes
from .asyncresult import AsyncResult
from .ledger import Ledger
from .outbox import RequestSender
from .paths import FANOUT_BYTES, Paths, largest
from .replies import error_reply

TASK_BATCH = 128  # load-balanced tasks per message from a map

R = TypeVar("R", bound=AsyncResult)
Call = tuple[tuple[Any, ...], dict[str, Any]]  # one call's positional and keyword arguments


def apply_payload(
    f: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[list[Any], list[Any], str]:
    """Payload and buffers of one apply request, and the function's digest."""
    if not callable(f):
        raise TypeError(f"apply needs a callable, not {type(f).__name__}")
    fdata, digest = serialize.dumps_function(f)
    adata, bufs = serialize.dumps((tuple(args), kwargs))
    return [fdata, adata], [b.raw() for b in bufs], digest


class Sending:
    """What :meth:`Submitter.sending` returns (a class, not a generator's context: it is
    entered for every ``apply_async``). Entering it registers the result's messages, so
    that whatever stops the sending (Ctrl-C, even one handled the moment they are
    registered) leaves none of them outstanding: ``rc.wait()`` would wait for ever on a
    message never sent."""

    __slots__ = ("ar", "sent", "submitter")

    def __init__(self, submitter: Submitter, ar: AsyncResult) -> None:
        self.submitter = submitter
        self.ar = ar
        self.sent: list[str] = []

    def __enter__(self) -> list[str]:
        try:
            self.submitter.ledger.expect(self.ar)
        except BaseException:  # stopped in it (or right after, on its way out): forget them
            self.submitter.unregister(self.ar.msg_ids)
            raise
        return self.sent

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None:
            return
        done = set(self.sent)
        unsent = [mid for mid in self.ar.msg_ids if mid not in done]
        if not unsent:
            return
        self.submitter.unregister(unsent)
        # One reply for them all, at once: Ctrl-C in a map of millions took 21 s to end it.
        failed = error_reply(unsent[0], type(exc).__name__, f"not sent: {exc}")
        self.ar.deliver_all([(mid, failed) for mid in unsent])


class Submitter:
    """Builds this client's requests and registers their results."""

    def __init__(
        self,
        sender: RequestSender,
        ledger: Ledger,
        paths: Paths,
        ident: bytes,
        max_message_bytes: int,
        check_open: Callable[[], None],
    ) -> None:
        self.sender = sender
        self.ledger = ledger
        self.pending = ledger.pending  # read for every request sent
        self.paths = paths
        self.ident = ident
        self.max_message_bytes = max_message_bytes  # the controller's bound on a frame; 0: none
        self.check_open = check_open  # raises once the client is closed
        self.id_prefix = ident[:8].hex()
        self.id_count = itertools.count()

    # ---- results -----------------------------------------------------------------------------

    def new_result(self, n: int, make_ar: Callable[[list[str]], R]) -> R:
        """Make ``n`` message ids and their result; :meth:`sending` registers them."""
        self.check_open()
        prefix, count = self.id_prefix, self.id_count
        return make_ar([f"{prefix}-{next(count):x}" for _ in range(n)])

    def unregister(self, msg_ids: list[str]) -> None:
        """Forget messages registered (or about to be) for a request that was not sent, or
        that the controller refused."""
        for mid in msg_ids:
            self.paths.answered(mid)
        self.ledger.forget(msg_ids)

    def sending(self, ar: AsyncResult) -> Sending:
        """A context that registers ``ar``'s messages, to wait for their replies, and
        yields a list for the ids sent so far; if building or sending a request fails half
        way (an argument that cannot be pickled, Ctrl-C), it fails and forgets the rest,
        or waiting for every outstanding result would wait for them forever."""
        return Sending(self, ar)

    # ---- sending -----------------------------------------------------------------------------

    def send(
        self,
        header: dict[str, Any],
        payload: list[Any],
        buffers: list[Any],
        tracked: AsyncResult | None = None,
        via: list[bytes] | None = None,
    ) -> None:
        """Send a request to the controller, or (``via``: those engines' identities)
        through the direct device; ``tracked`` learns when ZeroMQ let go of the buffers.

        Raises ValueError, forgetting the request, for a frame larger than the controller
        takes (the device takes buffers in chunks)."""
        limit = self.max_message_bytes
        if limit and max(largest(payload), 0 if via else largest(buffers)) > limit:
            self.unregister(header["ids"])
            raise ValueError(
                f"a frame of {max(largest(payload), largest(buffers))} bytes is more than the "
                f"controller takes ({limit}, `par controller --max-message-bytes`): push large "
                "data to the engines with a DirectView (it travels in chunks), or raise the limit"
            )
        header["c"] = self.ident
        header["ts"] = time.time()
        if tracked is None:
            in_flight = len(self.pending) > len(header["ids"])  # others than this request's
            self.sender.send((header, payload, buffers, via), in_flight)
            return
        messages = self.sender.build(header, payload, buffers, via)
        for tracker in self.sender.send_built(messages, via is not None, track=True):
            tracked.add_tracker(tracker)

    def direct(
        self,
        kind: str,
        targets: list[int],
        payload: list[Any],
        buffers: list[Any],
        make_ar: Callable[[list[str]], R],
        extra: dict[str, Any] | None = None,
        track: bool = False,
    ) -> R:
        """Send one request to several engines: through the direct device, once for each,
        or through the hub, which fans it out (see :mod:`par.client.paths`)."""
        ar = self.new_result(len(targets), make_ar)
        header = {"t": kind, "q": "d", "ids": ar.msg_ids, "tg": list(targets), **(extra or {})}
        limit = self.max_message_bytes
        hub = "co" in header or (  # coalesced: by the hub, as a large fan-out had better be
            len(targets) > 1
            and nbytes(payload) + nbytes(buffers) >= FANOUT_BYTES
            and not (limit and largest(buffers) > limit)  # the device takes it in chunks
        )
        with self.sending(ar) as sent:
            ways = self.paths.book(ar.msg_ids, targets, hub)
            for way in ways:
                h = header if len(ways) == 1 else {**header, "ids": way.ids, "tg": way.targets}
                if way.engines is not None:
                    h.pop("co", None)  # the hub alone coalesces
                self.send(h, payload, buffers, ar if track else None, way.engines)
                sent += way.ids
        ar.sent_to(targets)
        self.ledger.sent(ar)
        return ar

    def direct_each(
        self,
        f: Callable[..., Any],
        calls: Sequence[tuple[int, tuple[Any, ...]]],
        make_ar: Callable[[list[str]], R],
        extra: dict[str, Any] | None = None,
        track: bool = False,
    ) -> R:
        """Send ``f`` to several engines, each with its own (target, positional arguments)."""
        fdata, digest = serialize.dumps_function(f)
        ar = self.new_result(len(calls), make_ar)
        ar.sent_to([target for target, _ in calls])
        with self.sending(ar) as sent:
            for mid, (target, args) in zip(ar.msg_ids, calls, strict=True):
                header = {"t": "apply", "q": "d", "ids": [mid], "tg": [target], "f": digest}
                header.update(extra or {})
                adata, bufs = serialize.dumps((args, {}))
                (way,) = self.paths.book([mid], [target], hub=False)
                raw = [b.raw() for b in bufs]
                self.send(header, [fdata, adata], raw, ar if track else None, way.engines)
                sent.append(mid)
        self.ledger.sent(ar)
        return ar

    def tasks(
        self,
        f: Callable[..., Any],
        calls: Sequence[Call],
        make_ar: Callable[[list[str]], R],
        extra: dict[str, Any] | None = None,
        track: bool = False,
    ) -> R:
        """Send load-balanced tasks of one function, one per (args, kwargs); one result for all.

        Up to ``TASK_BATCH`` tasks travel in one message (the function once, then each
        task's arguments): the controller still schedules each on its own.
        """
        fdata, digest = serialize.dumps_function(f)
        ar = self.new_result(len(calls), make_ar)
        with self.sending(ar) as sent:
            for lo in range(0, len(calls), TASK_BATCH):
                header = {"t": "apply", "q": "t", "f": digest, **(extra or {})}
                tasks: list[messages.Task] = []
                for mid, (args, kwargs) in zip(
                    ar.msg_ids[lo : lo + TASK_BATCH], calls[lo : lo + TASK_BATCH], strict=True
                ):
                    adata, bufs = serialize.dumps((args, kwargs))
                    tasks.append((mid, [fdata, adata], [b.raw() for b in bufs]))
                payload, buffers = messages.join_tasks(header, tasks)
                self.send(header, payload, buffers, ar if track else None)
                sent += ar.msg_ids[lo : lo + TASK_BATCH]
        self.ledger.sent(ar)
        return ar
