"""Views that name their engines: :class:`DirectView` and :class:`BroadcastView`.

A DirectView sends each request to every engine it names, and an engine
runs one client's direct requests in the order they were sent. A request
goes to the engines through the controller's direct device, or through its
hub, which fans one message out (see :mod:`par.client.paths`); a
BroadcastView always takes the hub, and can have it coalesce the replies.
Besides ``apply`` and ``map`` a DirectView works on the engines' namespaces:
``execute``, ``push`` / ``pull``, ``scatter`` / ``gather``, ``sync_imports``.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .. import serialize
from ..engine import namespace
from ..messages import LABEL
from . import partition
from .asyncresult import AsyncMapResult, AsyncResult, JoinedResult
from .submit import apply_payload
from .view import Parts, R, Split, View, name_of

if TYPE_CHECKING:
    from .client import Client


def _switch_serializer(dill: bool, captured: str) -> None:
    """What the serializer switches run on the engines: pickle with dill or cloudpickle,
    and choose whose globals client-defined functions see (``namespace.use_captured``)."""
    if dill:
        serialize.use_dill()
    else:
        serialize.use_cloudpickle()
    namespace.use_captured(captured)


class DirectView(View):
    """Work sent to named engines, in order, each engine running every request."""

    flag_names: ClassVar[tuple[str, ...]] = ("block", "track", "label", "targets")

    def __init__(
        self, client: Client, targets: Any = "all", block: bool | None = None, **flags: Any
    ) -> None:
        self.targets = targets
        super().__init__(client, block, **flags)

    def _resolve(self, targets: Any = None) -> tuple[list[int], bool]:
        """The engine ids of ``targets`` (default: the view's) and whether it names one
        engine by its id (its results are then single values, not lists)."""
        targets = self.targets if targets is None else targets
        ids = self.client.ledger.targets(targets)
        if len(set(ids)) != len(ids):  # each engine answers a request once
            twice = sorted({t for t in ids if ids.count(t) > 1})
            raise ValueError(f"the targets name engines {twice} more than once: name each once")
        return ids, isinstance(targets, int)

    def engine_ids(self, targets: Any = None) -> list[int]:
        """The ids of the engines this view (or ``targets``) names now."""
        return self._resolve(targets)[0]

    def __len__(self) -> int:
        """How many engines this view names now."""
        return len(self._resolve()[0])

    def __repr__(self) -> str:
        return f"<DirectView {self.targets!r}>"

    def _send_apply(
        self,
        f: Callable[..., Any],
        args: Any,
        kwargs: Any,
        targets: Any = None,
        make_ar: Callable[[list[str]], AsyncResult] | None = None,
        track: bool | None = None,
    ) -> AsyncResult:
        tg, single = self._resolve(targets)
        payload, bufs, digest = apply_payload(f, args, kwargs)
        if make_ar is None:
            make_ar = lambda ids: AsyncResult(self.client, ids, name_of(f), single=single)  # noqa: E731
        extra = self._labelled({"f": digest, **self._routing(tg)})
        tracked = self.track if track is None else track
        submit = self.client.submitter
        return self._record(submit.direct("apply", tg, payload, bufs, make_ar, extra, tracked))

    def _labelled(self, extra: dict[str, Any]) -> dict[str, Any]:
        """The header keys ``extra`` with the view's label, which the controller records."""
        return extra if self.label is None else {**extra, LABEL: str(self.label)}

    def _routing(self, targets: list[int]) -> dict[str, Any]:
        """Extra header keys for the controller's direct path (none for a plain DirectView)."""
        return {}

    def _apply(self, f: Callable[..., Any], args: Any, kwargs: Any) -> AsyncResult:
        return self._send_apply(f, args, kwargs)

    def _map(self, f: Callable[..., Any], sequences: Any, **kw: Any) -> AsyncMapResult:
        if kw:
            raise TypeError(f"DirectView.map got unexpected arguments: {', '.join(kw)}")
        seqs = partition.aligned(sequences)
        return self._map_parts(f, lambda width: partition.split(seqs, width))

    def send_parts(
        self,
        f: Callable[..., Any],
        split: Split,
        make_result: Callable[[list[str], Parts], R],
        extra: dict[str, Any] | None = None,
    ) -> R:
        """Call ``f`` with part ``i`` of the work on the view's ``i``-th engine (see
        :meth:`View.send_parts`)."""
        return self._send_each(f, split, make_result, extra)

    def _send_each(
        self,
        f: Callable[..., Any],
        split: Split,
        make_result: Callable[[list[str], Parts], R],
        extra: dict[str, Any] | None = None,
        targets: Any = None,
        track: bool | None = None,
    ) -> R:
        """:meth:`send_parts` to the engines ``targets`` names (default: the view's), tracked
        as ``track`` says (default: the view's flag)."""
        tg, _ = self._resolve(targets)
        parts = split(len(tg))
        calls = list(zip(tg[: len(parts)], parts, strict=True))  # the empty parts are last
        tracked = self.track if track is None else track
        ar = self.client.submitter.direct_each(
            f, calls, lambda ids: make_result(ids, parts), self._labelled(extra or {}), tracked
        )
        return self._record(ar)

    # ---- namespace ---------------------------------------------------------------------

    def execute(
        self, code: str, silent: bool = True, targets: Any = None, block: bool | None = None
    ) -> AsyncResult:
        """Run code in each engine's namespace; return its AsyncResult (when blocking, once
        done, raising the engines' errors).

        Each engine's result is an :class:`~par.client.outputs.ExecuteReply`. With
        ``silent=False`` the value of a final expression, if not None, becomes the
        message's ``execute_result`` (a MIME bundle), as a cell's ``Out`` in IPython;
        ``silent=True`` (the default, as in ipyparallel) runs the code without one.
        """
        tg, single = self._resolve(targets)
        client = self.client
        ar = client.submitter.direct(
            "execute",
            tg,
            [code.encode()],
            [],
            lambda ids: AsyncResult(client, ids, "execute", single=single),
            self._labelled({} if silent else {"x": 1}),
        )
        self._record(ar)
        for mid in ar.msg_ids:
            ar.metadata_of(mid)["execute_input"] = code
        if self.block if block is None else block:
            ar.get()
        return ar

    def run(
        self, filename: str | Path, targets: Any = None, block: bool | None = None
    ) -> AsyncResult:
        """Run a local Python file's code on the engines (see :meth:`execute`)."""
        return self.execute(Path(filename).read_text(), targets=targets, block=block)

    def push(
        self,
        ns: dict[str, Any],
        targets: Any = None,
        block: bool | None = None,
        track: bool | None = None,
    ) -> Any:
        """Set names in each engine's namespace.

        ``track=True``: the result's ``sent`` / ``wait_for_send`` tell when the values'
        buffers may be changed again (default: the view's ``track`` flag).
        """
        if not isinstance(ns, dict):
            raise TypeError(f"push needs a dict of names to values, not {type(ns).__name__}")
        ar = self._send_apply(namespace.push, (ns,), {}, targets, track=track)
        return self._finish(ar, block)

    def update(self, ns: dict[str, Any]) -> Any:
        """Push ``ns`` (as dict.update does)."""
        return self.push(ns)

    def pull(self, names: str | list[str], targets: Any = None, block: bool | None = None) -> Any:
        """Values of one or more names from each engine."""
        return self._finish(self._send_apply(namespace.pull, (names,), {}, targets), block)

    def get(self, key_s: str | list[str]) -> Any:
        """Pull, waiting for the values."""
        return self.pull(key_s, block=True)

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str):
            raise TypeError(f"view keys are variable names, not {type(key).__name__}")
        return self.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self.push({key: value}, block=True)

    def clear(self, targets: Any = None, block: bool | None = None) -> Any:
        """Empty the engines' namespaces (see :meth:`~par.Client.clear`: a control
        message, not a task)."""
        tg, _ = self._resolve(targets)
        return self.client.clear(tg, self.block if block is None else block)

    def scatter(
        self,
        key: str,
        seq: Any,
        dist: str = "b",
        flatten: bool = False,
        targets: Any = None,
        block: bool | None = None,
        track: bool | None = None,
    ) -> Any:
        """Split ``seq`` across the engines, storing each part under ``key`` (``track`` as
        for :meth:`push`)."""

        def split(width: int) -> Parts:  # a part for every engine, even an empty one
            parts = partition.partition(seq, width, dist)
            return [({key: part[0] if flatten and len(part) == 1 else part},) for part in parts]

        client = self.client
        ar = self._send_each(
            namespace.push,
            split,
            lambda ids, _: AsyncResult(client, ids, "scatter", single=False),
            targets=targets,
            track=track,
        )
        return self._finish(ar, block)

    def gather(
        self, key: str, dist: str = "b", targets: Any = None, block: bool | None = None
    ) -> Any:
        """Pull ``key`` from each engine and join the parts (the inverse of scatter)."""
        tg, _ = self._resolve(targets)
        ar = self._send_apply(
            namespace.pull,
            (key,),
            {},
            tg,
            lambda ids: JoinedResult(self.client, ids, "gather", dist),
        )
        return self._finish(ar, block)

    # ---- imports, serializers, magics ---------------------------------------------------

    @property
    def importer(self) -> contextlib.AbstractContextManager[None]:
        """``sync_imports()`` as a property, as in ipyparallel: ``with dv.importer: import x``
        imports ``x`` here and on the engines."""
        return self.sync_imports()

    @contextlib.contextmanager
    def sync_imports(self, local: bool = True, quiet: bool = False) -> Iterator[None]:
        """Within the block, every ``import`` this thread runs also runs on the engines.

        ``import numpy as np`` imports ``numpy`` remotely (aliases are not carried over).
        """
        if not local:
            raise NotImplementedError(
                "sync_imports(local=False) is not supported: imports run here and on the engines"
            )
        real_import = builtins.__import__
        owner = threading.get_ident()
        done: set[str] = set()

        def view_import(
            name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
        ) -> Any:
            if threading.get_ident() != owner:  # other threads import as usual
                return real_import(name, globals, locals, fromlist, level)
            builtins.__import__ = real_import  # what the imported modules import stays local
            try:
                module = real_import(name, globals, locals, fromlist, level)
                key = f"{name}:{','.join(fromlist or ())}"
                if level == 0 and key not in done:
                    done.add(key)
                    names = ", ".join(fromlist or ())
                    stmt = f"from {name} import {names}" if fromlist else f"import {name}"
                    if not quiet:
                        print(f"{stmt} on engine(s)")
                    self.execute(stmt, block=True)
                return module
            finally:
                builtins.__import__ = view_import

        builtins.__import__ = view_import
        try:
            yield
        finally:
            builtins.__import__ = real_import

    def use_cloudpickle(self) -> Any:
        """Pickle with cloudpickle (par's default, undoing :meth:`use_dill`), here and on the
        view's engines; there, functions defined here see this process's values of their
        global names over the engines' own, as after ipyparallel's ``use_cloudpickle``.
        Holds for every client of those engines; returns the result of the switch on them."""
        serialize.use_cloudpickle()
        return self.apply(_switch_serializer, False, namespace.CLIENT)

    def use_dill(self) -> Any:
        """Pickle with dill here and on the view's engines, as ipyparallel's ``use_dill``:
        it also sends what cloudpickle refuses, such as a function holding a file open for
        writing (needs dill here and there). Globals as after :meth:`use_cloudpickle`,
        which switches back."""
        serialize.use_dill()
        return self.apply(_switch_serializer, True, namespace.CLIENT)

    def use_pickle(self) -> Any:
        """Pickle with cloudpickle (undoing :meth:`use_dill`), here and on the view's
        engines; there, functions defined in this process's ``__main__`` (or
        ``@interactive``) see the engines' namespace only, none of this process's globals,
        as after ipyparallel's ``use_pickle`` (its default). Holds for every client of
        those engines; returns the result of the switch on them."""
        serialize.use_cloudpickle()
        return self.apply(_switch_serializer, False, namespace.ENGINE)

    def activate(self, suffix: str = "") -> None:
        """Register ``%px``, ``%%px``, ``%autopx``, ``%pxresult``, ``%pxconfig`` (plus ``suffix``)
        for this view in the running IPython session."""
        from ..magics import activate

        activate(self, suffix)


class BroadcastView(DirectView):
    """A DirectView whose requests reach every target in one client message.

    With ``is_coalescing=True`` the controller also gathers the engines' replies
    and returns them to the client as one message.
    """

    flag_names: ClassVar[tuple[str, ...]] = (
        "block",
        "track",
        "label",
        "targets",
        "is_coalescing",
    )

    def __init__(
        self, client: Client, targets: Any = "all", is_coalescing: bool = False, **flags: Any
    ) -> None:
        self.is_coalescing = is_coalescing
        super().__init__(client, targets, **flags)

    def __repr__(self) -> str:
        return f"<BroadcastView {self.targets!r} coalescing={self.is_coalescing}>"

    def _labelled(self, extra: dict[str, Any]) -> dict[str, Any]:
        """The header keys ``extra`` with the view's label, which the controller records."""
        return extra if self.label is None else {**extra, LABEL: str(self.label)}

    def _routing(self, targets: list[int]) -> dict[str, Any]:
        return {"co": 1} if self.is_coalescing and len(targets) > 1 else {}
