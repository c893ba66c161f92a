"""What tasks show besides their results: streams, rich displays, execute results, data.

The thread receiving for the client records them in each message's metadata
as they arrive (:func:`record_stream` for what a running task streams,
:func:`record_reply` for the rest, which rides in the reply). Results show
them here (:func:`streaming` while tasks run, :func:`display_all` once
they are done): through IPython's display machinery when an IPython shell is running, as
text otherwise. :class:`ExecuteReply` is what ``execute`` returns per engine.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from functools import partialmethod
from typing import TYPE_CHECKING, Any, TextIO

from .. import serialize
from ..engine.display import MIME_METHODS, plain_text

if TYPE_CHECKING:
    from .replies import Metadata, Reply

log = logging.getLogger("par.client")


# ---- recording ---------------------------------------------------------------------------


def _add_displays(md: Metadata, displays: list[Any]) -> None:
    """Add displays (``[entry, stdout position, stderr position]``) to ``md["outputs"]``.

    Positions go first: a reader that sees an output also sees where it goes.
    """
    for entry, stdout, stderr in displays:
        md.positions.append((int(stdout), int(stderr)))
        md["outputs"].append({"data": entry.get("data", {}), "metadata": entry.get("metadata", {})})


def _add_data(
    md: Metadata, frames: Sequence[Any], buffers: Sequence[Any], counts: list[int]
) -> None:
    """Merge published data (one pickle per publication, then their buffers) into ``md["data"]``."""
    pos = 0
    for frame, n in zip(frames, counts, strict=True):
        try:
            md["data"].update(serialize.loads(frame, buffers[pos : pos + n]))
        except Exception as exc:  # e.g. a class this client cannot import
            log.warning("could not unpickle data published by %s: %s", md["msg_id"], exc)
        pos += n


def record_stream(md: Metadata, h: dict[str, Any], payload: list[Any], buffers: list[Any]) -> None:
    """Record one message a running task streamed: text, displays, or published data."""
    name = h.get("n")
    if name in ("stdout", "stderr"):
        md[name] += str(h.get("d", ""))
    elif name == "display":
        _add_displays(md, h.get("dp", []))
    elif name == "data":
        _add_data(md, payload, buffers, [len(buffers)])


OUTPUT_KEYS = frozenset(("dp", "o", "r", "er", "pd"))  # what record_reply takes from a header


def carries_output(h: dict[str, Any]) -> bool:
    """Whether a reply's header carries what only its metadata keeps (see
    :func:`record_reply`)."""
    return not OUTPUT_KEYS.isdisjoint(h)


def record_reply(md: Metadata, reply: Reply) -> Reply:
    """Record what a reply carries besides its result; return the reply without the
    published data's frames."""
    h = reply.header
    if "dp" in h:
        _add_displays(md, h["dp"])
    if "o" in h:
        md["stdout"] += h["o"]
    if "r" in h:
        md["stderr"] += h["r"]
    if "er" in h:
        md["execute_result"] = {**h["er"], "execution_count": h.get("ec")}
    counts = h.get("pd")
    if not counts:
        return reply
    nres = len(reply.buffers) - sum(counts)
    _add_data(md, reply.payload[1:], reply.buffers[nres:], counts)
    return type(reply)(h, reply.payload[:1], reply.buffers[:nres])


# ---- showing -----------------------------------------------------------------------------


def shell() -> Any:
    """The running IPython shell, or None (IPython is never imported here)."""
    ipython = sys.modules.get("IPython")
    return None if ipython is None else ipython.get_ipython()


def _ipython_display(data: dict[str, Any], metadata: dict[str, Any]) -> None:
    importlib.import_module("IPython.display").display(data, metadata=metadata, raw=True)


def write_prefixed(out: TextIO, prefix: str, text: str) -> None:
    """Write ``text`` with ``prefix`` before each line (the engine it came from)."""
    lines = text.splitlines(keepends=True)
    out.write("".join(prefix + line for line in lines))
    if not text.endswith("\n"):
        out.write("\n")
    out.flush()


def show_output(entry: dict[str, Any], engine_id: Any) -> None:
    """Show one rich output of an engine: IPython's display, or its text/plain."""
    if shell() is not None:
        _ipython_display({"text/plain": f"[output:{engine_id}]"}, {})
        _ipython_display(entry["data"], {**entry["metadata"], "engine": engine_id})
    else:
        write_prefixed(sys.stdout, f"[output:{engine_id}] ", plain_text(entry["data"]))


def _result_bundle(md: Metadata) -> tuple[dict[str, Any], dict[str, Any]]:
    """An execute result's MIME bundle, its text/plain headed ``Out[engine:count]:``."""
    result = md["execute_result"] or {}
    data = dict(result.get("data") or {})
    text = str(data.get("text/plain", ""))
    if text:
        if "\n" in text and not text.startswith("\n"):
            text = "\n" + text
        data["text/plain"] = f"Out[{md['engine_id']}:{result.get('execution_count')}]: {text}"
    return data, dict(result.get("metadata") or {})


def show_result(md: Metadata) -> None:
    """Show a message's execute result, if it has one, as IPython shows an ``Out`` prompt."""
    if md["execute_result"] is None:
        return
    data, metadata = _result_bundle(md)
    if shell() is not None:
        _ipython_display(data, metadata)
    else:
        print(data.get("text/plain", ""))


def show_new(md: Metadata, shown: list[int], final: bool) -> None:
    """Show what one message output since ``shown`` ([stdout, stderr, outputs] shown so far,
    updated), in the order it happened: streams prefixed with their engine.

    An output waits until the text written before it has arrived, unless ``final``.
    """
    eid = md["engine_id"]
    texts = (md["stdout"], md["stderr"])  # read the texts first: outputs arrive before theirs
    outputs, positions = md["outputs"], md.positions
    while shown[2] < min(len(outputs), len(positions)):
        stops = positions[shown[2]]
        _show_text(texts, shown, stops, eid)
        if not final and (stops[0] > len(texts[0]) or stops[1] > len(texts[1])):
            return
        show_output(outputs[shown[2]], eid)
        shown[2] += 1
    _show_text(texts, shown, (len(texts[0]), len(texts[1])), eid)


def _show_text(texts: tuple[str, str], shown: list[int], stops: tuple[int, int], eid: Any) -> None:
    for i, (name, out) in enumerate((("stdout", sys.stdout), ("stderr", sys.stderr))):
        stop = min(stops[i], len(texts[i]))
        if stop > shown[i]:
            write_prefixed(out, f"[{name}:{eid}] ", texts[i][shown[i] : stop])
            shown[i] = stop


@contextlib.contextmanager
def streaming(mds: list[Metadata], interval: float) -> Iterator[None]:
    """Within the block, show what the messages output as it arrives (every ``interval``
    seconds, from a thread of its own); at its end, the rest."""
    stop = threading.Event()
    printer = threading.Thread(
        target=_show_live, args=(mds, stop, interval), name="par-stream", daemon=True
    )
    printer.start()
    try:
        yield
    finally:
        stop.set()
        printer.join()


def _show_live(mds: list[Metadata], stop: threading.Event, interval: float) -> None:
    shown: dict[str, list[int]] = {}  # msg id -> [stdout, stderr, outputs] shown
    while True:
        finished = stop.is_set()
        for md in mds:
            show_new(md, shown.setdefault(md["msg_id"], [0, 0, 0]), finished)
        if finished:
            return
        stop.wait(interval)


def display_all(mds: list[Metadata], groupby: str, result_only: bool, headed: bool) -> None:
    """Show the messages' streams, rich outputs and execute results, grouped by ``'type'``,
    ``'engine'`` or ``'order'`` (see ``AsyncResult.display_outputs``); ``headed``: each
    stream under its engine's ``[stdout:N]``."""
    if groupby == "engine":
        mds = sorted(mds, key=lambda md: (md["engine_id"] is None, md["engine_id"] or 0))
        for md in mds:
            if not result_only:
                _print_block("stdout", md, headed)
                _print_block("stderr", md, headed)
                for entry in md["outputs"]:
                    show_output(entry, md["engine_id"])
            show_result(md)
        return
    if not result_only:
        for name in ("stdout", "stderr"):
            for md in mds:
                _print_block(name, md, headed)
        rounds = max((len(md["outputs"]) for md in mds), default=0) if groupby == "order" else 1
        for i in range(rounds):
            for md in mds:
                chosen = md["outputs"] if groupby == "type" else md["outputs"][i : i + 1]
                for entry in chosen:
                    show_output(entry, md["engine_id"])
    for md in mds:
        show_result(md)


def _print_block(name: str, md: Metadata, headed: bool) -> None:
    """Print one message's stream (``headed``: under its engine's ``[stdout:N]``)."""
    text = md[name]
    if text:
        out = sys.stderr if name == "stderr" else sys.stdout
        if headed:
            print(f"[{name}:{md['engine_id']}]", file=out)
        print(text, end="" if text.endswith("\n") else "\n", file=out)


# ---- execute replies ---------------------------------------------------------------------


class ExecuteReply:
    """The result of ``execute`` on one engine, as ipyparallel's ``ExecuteReply``.

    Its metadata keys read as attributes and items (``er.stdout``, ``er["engine_id"]``);
    ``execution_count`` counts the engine's non-silent executes. It displays as the
    value of the code's final expression (``execute(..., silent=False)``), headed
    ``Out[engine:count]:``, with every representation that value had.
    """

    def __init__(self, msg_id: str, execution_count: int | None, metadata: Metadata) -> None:
        self.msg_id = msg_id
        self.execution_count = execution_count
        self.metadata = metadata

    @property
    def data(self) -> dict[str, Any]:
        """The execute result's MIME bundle (empty without a result)."""
        return dict((self.metadata["execute_result"] or {}).get("data") or {})

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return _result_bundle(self.metadata)

    def _repr_mime_(self, mime: str) -> Any:
        """One representation (with its metadata, if it has some), as IPython asks for it."""
        if mime not in self.data:
            return None
        extra = ((self.metadata["execute_result"] or {}).get("metadata") or {}).get(mime)
        return (self.data[mime], extra) if extra else self.data[mime]

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(_result_bundle(self.metadata)[0].get("text/plain", ""))

    def display(self) -> None:
        """Show the execute result (IPython's display in IPython, else print it)."""
        show_result(self.metadata)

    def __getitem__(self, key: str) -> Any:
        return self.metadata[key]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key not in self.__dict__.get("metadata", {}):
            raise AttributeError(key)
        return self.metadata[key]

    def __eq__(self, other: object) -> bool:
        """The same message's reply (as read through any result over that message)."""
        if not isinstance(other, ExecuteReply):
            return NotImplemented
        return (self.msg_id, self.execution_count) == (other.msg_id, other.execution_count)

    def __hash__(self) -> int:
        return hash(self.msg_id)

    def __repr__(self) -> str:
        text = str(self.data.get("text/plain", ""))
        if len(text) > 32:
            text = text[:29] + "..."
        return f"<ExecuteReply[{self.execution_count}]: {text}>"


for _mime, _name in MIME_METHODS.items():
    setattr(ExecuteReply, _name, partialmethod(ExecuteReply._repr_mime_, _mime))
