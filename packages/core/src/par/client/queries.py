"""Questions a client asks the controller, and their answers.

A query is one message to the controller naming an operation (``op``: the
controller's table of them is in ``controller/query.py``) and a fresh query
id. The controller answers on the client's reply connection with a ``qr``
message carrying the same id; the thread receiving (see
:mod:`par.client.io`) hands it to :meth:`Queries.answered`, which resolves
the future the asking thread waits on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import Any

from .. import protocol
from ..errors import ControllerError
from ..protocol import Session
from .outbox import RequestSender

Answer = tuple[dict[str, Any], list[Any]]  # the answer's header and its payload frames


class Answered(Future[Any]):
    """The data of a query's answer, asked without waiting: a ``concurrent.futures.Future``
    that can be awaited too, as an AsyncResult can."""

    def __await__(self) -> Generator[Any, None, Any]:
        return asyncio.wrap_future(self).__await__()


class Queries:
    """Sends queries and matches the answers to them."""

    def __init__(
        self,
        sender: RequestSender,
        session: Session,
        ident: bytes,
        url: str,
        check_open: Callable[[], None],
    ) -> None:
        self.sender = sender
        self.session = session
        self.ident = ident  # the client's identity: where the controller answers
        self.url = url  # the controller's, for error messages
        self.check_open = check_open  # raises once the client is closed
        self.waiting: dict[str, Future[Answer]] = {}

    def frames(self, op: str, args: dict[str, Any]) -> tuple[str, list[Any]]:
        """A query's id and its message; ValueError if its header is larger than the
        controller reads (the controller drops such a message, and the query would only
        time out)."""
        qid = protocol.new_id()
        header = {"t": "query", "op": op, "qid": qid, "c": self.ident, **args}
        frames = self.session.serialize(header)
        size, limit = len(frames[0]), protocol.MAX_HEADER_BYTES
        if size > limit:
            raise ValueError(
                f"the {op!r} query is {size / 1e6:.0f} MB, more than the controller reads in "
                f"a message's header ({limit / 1e6:.0f} MB): ask about fewer tasks at a time"
            )
        return qid, frames

    def expect(self, qid: str) -> Future[Answer]:
        """The future the answer to query ``qid`` resolves."""
        fut: Future[Answer] = Future()
        self.waiting[qid] = fut
        return fut

    def send(self, op: str, args: dict[str, Any]) -> None:
        """Send a query whose answer nobody waits for."""
        self.sender.send_built([self.frames(op, args)[1]])

    def ask(self, op: str, timeout: float | None = 10.0, **args: Any) -> Any:
        """Ask the controller ``op`` and wait for its answer's data."""
        return self.ask_frames(op, timeout, args)[0]

    def ask_frames(
        self, op: str, timeout: float | None, args: dict[str, Any]
    ) -> tuple[Any, list[Any]]:
        """Ask the controller ``op`` and wait for its answer: its data and payload frames."""
        self.check_open()
        qid, frames = self.frames(op, args)
        fut = self.expect(qid)
        self.sender.send_built([frames])
        return self.wait(fut, timeout, op)

    def later(self, op: str, **args: Any) -> Answered:
        """Ask the controller ``op`` without waiting: a future of its answer's data (which
        raises ControllerError if the controller refused it)."""
        self.check_open()
        qid, frames = self.frames(op, args)
        out = Answered()

        def settle(fut: Future[Answer]) -> None:
            try:
                out.set_result(self.data_of(fut.result(), op)[0])
            except Exception as exc:  # refused, or the client's connection was
                out.set_exception(exc)

        self.expect(qid).add_done_callback(settle)
        self.sender.send_built([frames])
        return out

    def wait(self, fut: Future[Answer], timeout: float | None, op: str) -> tuple[Any, list[Any]]:
        """The answer to a query: its data and its payload frames; raises ControllerError if the
        controller refused it, TimeoutError if it did not answer in time."""
        try:
            answer = fut.result(timeout)
        except TimeoutError:
            raise TimeoutError(
                f"the controller at {self.url} did not answer {op!r} within "
                f"{timeout} s; is the cluster running? (`par list`)"
            ) from None
        return self.data_of(answer, op)

    @staticmethod
    def data_of(answer: Answer, op: str) -> tuple[Any, list[Any]]:
        """An answer's data and payload frames; raises ControllerError if it is a refusal."""
        reply, payload = answer
        if not reply.get("ok"):
            ename, evalue = reply.get("err") or ("ParError", "no reason given")
            raise ControllerError(op, ename, evalue)
        return reply.get("d"), payload

    def refused(self, error: Exception) -> None:
        """The controller refused this client (from the thread receiving): fail the
        queries waiting (the client's connect) with ``error``."""
        for fut in list(self.waiting.values()):
            if not fut.done():
                fut.set_exception(error)

    def answered(self, header: dict[str, Any], payload: list[Any]) -> None:
        """An answer came (from the thread receiving): resolve its query's future."""
        fut = self.waiting.pop(header.get("qid", ""), None)
        if fut is not None and not fut.done():
            fut.set_result((header, payload))
