"""Views: imap, executor, sync_imports, serializer toggles, and the decorator methods."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Executor, as_completed
from pathlib import Path

import par
import pytest


def slow_square(x: int) -> int:
    import time

    time.sleep(0.05 if x % 2 else 0.0)
    return x * x


def test_imap_ordered_unordered_and_lazy(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    assert list(lv.imap(slow_square, range(12))) == [x * x for x in range(12)]
    assert sorted(lv.imap(slow_square, range(12), ordered=False)) == [x * x for x in range(12)]
    assert list(lv.imap(pow, [2, 3], [3, 2])) == [8, 9]

    drawn: list[int] = []

    def source() -> Iterator[int]:
        for i in itertools.count():
            drawn.append(i)
            yield i

    it = lv.imap(slow_square, source(), max_outstanding=2)
    assert [next(it) for _ in range(4)] == [0, 1, 4, 9]
    time.sleep(0.3)
    assert len(drawn) <= 4 + 2 + 2 * 2 + 1, "input is read only as the window allows"
    it.cancel()
    assert list(it) == []


def fail_on_2(n: int) -> int:
    if n == 2:
        raise ValueError("two!")
    return n


def test_map_with_return_exceptions_puts_errors_in_place(rc: par.Client) -> None:
    amr = rc.load_balanced_view().map(fail_on_2, range(4), return_exceptions=True)
    first = list(amr)  # iterating does not raise either
    error = first[2]
    assert isinstance(error, par.RemoteError) and error.ename == "ValueError"
    assert first == [0, 1, error, 3] and amr.get() == [0, 1, error, 3]
    with pytest.raises(par.RemoteError, match="two!"):
        amr.get(return_exceptions=False)
    dv = rc[:2]
    values = dv.map_sync(fail_on_2, range(4), return_exceptions=True)  # a chunk per engine
    assert values[:2] == [0, 1] and len(values) == 3 and isinstance(values[2], par.RemoteError)
    assert dv.map(fail_on_2, range(4), block=True, return_exceptions=True)[:2] == [0, 1]
    assert rc.load_balanced_view().map_async(fail_on_2, [2], return_exceptions=True).get()[0]
    with pytest.raises(par.CompositeError):
        dv.map_sync(fail_on_2, range(4))


def test_imap_errors(rc: par.Client) -> None:
    lv = rc.load_balanced_view()

    def maybe_fail(x: int) -> int:
        if x == 1:
            raise KeyError(x)
        return x

    it = lv.imap(maybe_fail, range(3))
    assert next(it) == 0
    with pytest.raises(par.RemoteError, match="KeyError"):
        next(it)
    assert next(it) == 2
    values = list(lv.imap(maybe_fail, range(3), return_exceptions=True))
    assert isinstance(values[1], par.RemoteError)

    def broken() -> Iterator[int]:
        yield 1
        raise RuntimeError("input broke")

    it = lv.imap(abs, broken())
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="input broke"):
        next(it)
    with pytest.raises(ValueError, match="max_outstanding"):
        lv.imap(abs, [1], max_outstanding=0)
    with pytest.raises(TypeError, match="at least one sequence"):
        lv.imap(abs)
    with pytest.raises(TypeError, match="callable"):
        lv.imap(3, [1])


def test_executor(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    ex = lv.executor
    assert isinstance(ex, Executor) and isinstance(ex, par.ViewExecutor)
    futures = [ex.submit(slow_square, i) for i in range(6)]
    assert sorted(f.result() for f in as_completed(futures)) == [i * i for i in range(6)]
    assert list(ex.map(slow_square, range(5))) == [0, 1, 4, 9, 16]
    assert list(ex.map(slow_square, range(5), chunksize=2)) == [0, 1, 4, 9, 16]
    assert list(rc[:].executor.map(abs, [-1, -2, -3])) == [1, 2, 3]
    with pytest.raises(TimeoutError, match="within"):
        list(ex.map(time.sleep, [1.0] * 3, timeout=0.2))
    with lv.executor as ex2:
        f = ex2.submit(slow_square, 3)
    assert f.done() and f.result() == 9
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex2.submit(abs, 1)
    assert rc.ids, "shutting an executor down leaves the engines running"
    assert rc[:].apply_sync(lambda: 1) == [1] * len(rc.ids)


def test_an_executors_with_block_waits_for_its_maps(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    n = 6 * len(rc.ids)  # more than a lazy map keeps unread
    with lv.executor as ex:
        first = ex.submit(time.sleep, 0.5)
        mapped = ex.map(abs, range(-n, 0))
        bigger = ex.map(abs, range(-n, 0), chunksize=4)
    assert first.done() and len(lv.history) == 1 + n + n // 4
    assert lv.outstanding == set()  # every task of the maps ran, their results wait here
    assert list(mapped) == list(range(n, 0, -1)) and list(bigger) == list(range(n, 0, -1))
    with lv.executor as ex:
        endless = ex.map(time.sleep, itertools.repeat(0.2))
        ex.shutdown(wait=False, cancel_futures=True)  # stops the map: the block ends
    assert list(endless) == []


def test_executor_map_is_the_lazy_map_without_a_timeout(rc: par.Client) -> None:
    ex = rc.load_balanced_view().executor
    results = ex.map(slow_square, range(4))
    assert isinstance(results, par.LazyMapIterator)  # as ipyparallel: cancel() stops it
    assert list(results) == [0, 1, 4, 9]


def test_sync_imports(rc: par.Client, capsys: pytest.CaptureFixture[str]) -> None:
    import builtins

    original_import = builtins.__import__
    dv = rc[:]
    dv.clear(block=True)
    with dv.sync_imports():
        import json  # noqa: F401
        from os import path  # noqa: F401
    assert "import json on engine(s)" in capsys.readouterr().out
    imported = dv.apply_sync(lambda: [k for k in ("json", "path") if k in globals()])
    assert imported == [["json", "path"]] * len(rc.ids)
    with dv.sync_imports(quiet=True):
        import string  # noqa: F401
    assert capsys.readouterr().out == ""
    with pytest.raises(NotImplementedError, match="local=False"), dv.sync_imports(local=False):
        pass
    assert builtins.__import__ is original_import


def test_importer(
    rc: par.Client,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dv = rc[:]
    dv.clear(block=True)
    with dv.importer:  # a property, as in ipyparallel: sync_imports()
        import re  # noqa: F401
    assert "import re on engine(s)" in capsys.readouterr().out
    found = dv.apply_sync(lambda pattern, s: globals()["re"].findall(pattern, s), r"\w+", "a b")
    assert found == [["a", "b"]] * len(rc.ids)

    with pytest.raises(ModuleNotFoundError), dv.importer:
        import no_such_module_anywhere  # noqa: F401
    (tmp_path / "only_here.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # importable here, not on the engines
    with pytest.raises(par.CompositeError, match="ModuleNotFoundError"), dv.importer:
        import only_here  # noqa: F401


def test_use_cloudpickle_and_use_pickle_choose_whose_globals_a_function_sees(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    request.addfinalizer(par.serialize.use_cloudpickle)  # use_dill below holds process-wide

    @par.interactive  # of __main__, whose globals ipyparallel's default pickling leaves out
    def read_shade() -> str:
        return shade  # type: ignore[name-defined]  # noqa: F821

    def read_shade_here() -> str:  # of this module: its globals go along in any case
        return shade  # type: ignore[name-defined]  # noqa: F821

    with par.Cluster(n=2) as rc:  # its own engines: the choice holds engine-wide
        dv = rc[:]
        dv["shade"] = "engine"
        monkeypatch.setattr(sys.modules["__main__"], "shade", "client", raising=False)
        monkeypatch.setitem(globals(), "shade", "client")
        assert dv.apply_sync(read_shade) == ["engine"] * 2  # by default the engine's names win
        dv.execute("del shade", block=True)
        assert dv.apply_sync(read_shade) == ["client"] * 2  # and the client's fill in
        dv["shade"] = "engine"
        dv.use_cloudpickle().get(timeout=30)
        assert dv.apply_sync(read_shade) == ["client"] * 2  # the client's win
        assert dv["shade"] == ["engine"] * 2  # only for the call
        dv.use_pickle().get(timeout=30)
        assert dv.apply_sync(read_shade) == ["engine"] * 2
        dv.execute("del shade", block=True)
        with pytest.raises(par.CompositeError, match="NameError"):
            dv.apply_sync(read_shade)  # the engine's namespace only
        assert dv.apply_sync(read_shade_here) == ["client"] * 2
        dv.use_dill().get(timeout=30)
        assert dv.apply_sync(read_shade) == ["client"] * 2
        assert dv.apply_sync(lambda x: x * x, 3) == [9] * 2


def test_activate_needs_ipython(rc: par.Client) -> None:
    if "IPython" in sys.modules and sys.modules["IPython"].get_ipython() is not None:
        pytest.skip("running inside IPython")
    with pytest.raises(RuntimeError, match="IPython"):
        rc[:].activate()


def test_flags_and_temp_flags(rc: par.Client) -> None:
    lv = rc.load_balanced_view()
    with lv.temp_flags(block=True):
        assert lv.apply(abs, -3) == 3
    assert lv.block is False
    with pytest.raises(KeyError, match="invalid flag"):
        lv.set_flags(colour="red")


@pytest.mark.parametrize("kind", ["direct", "load_balanced"])
def test_map_over_an_empty_sequence_returns_an_empty_list_at_once(
    rc: par.Client, kind: str
) -> None:
    view = rc[:] if kind == "direct" else rc.load_balanced_view()
    assert view.map_sync(abs, []) == []
    assert view.map(abs, [], block=True) == []
    ar = view.map_async(abs, range(0))
    assert ar.get(timeout=5) == []
    assert ar.ready() and list(ar) == [] and len(ar) == 0
    assert view.map(abs, (), (), block=False).get(timeout=5) == []


@pytest.mark.parametrize("view", ["direct", "load-balanced"])
def test_a_map_with_an_argument_that_cannot_be_pickled_leaves_nothing_to_wait_for(
    rc: par.Client, view: str
) -> None:
    """The tasks before the bad argument run; those from it on are forgotten, so waiting
    for every outstanding result returns instead of waiting for tasks never sent."""
    import threading

    v = rc[:] if view == "direct" else rc.load_balanced_view()
    items: list[object] = list(range(300))
    items[200] = threading.Lock()
    with pytest.raises(par.serialize.SerializationError, match="lock"):
        v.map_async(str, items)
    assert rc.wait(timeout=30)
    assert rc.outstanding == set()


@pytest.mark.parametrize("view", ["direct", "load-balanced"])
def test_ctrl_c_as_a_request_registers_leaves_nothing_to_wait_for(
    rc: par.Client, view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C handled just after a request's messages were registered, before any was
    sent (a signal that came during the registration of a large map is handled then):
    none stays outstanding. They stayed, and ``rc.wait()`` waited for ever."""
    ledger = rc.ledger
    expect = ledger.expect

    def interrupted(ar: par.AsyncResult, owner: bool = True) -> None:
        expect(ar, owner)
        raise KeyboardInterrupt

    monkeypatch.setattr(ledger, "expect", interrupted)
    v = rc[:] if view == "direct" else rc.load_balanced_view()
    with pytest.raises(KeyboardInterrupt):
        v.map_async(str, range(300))
    monkeypatch.undo()
    assert rc.outstanding == set()
    assert rc.wait(timeout=5)
    assert v.map_sync(str, range(3)) == ["0", "1", "2"]


def test_ctrl_c_in_a_large_map_fails_the_unsent_tasks_at_once(
    rc: par.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while a map is sent: the tasks sent run, and those not sent fail together,
    with one reply and one error for them all. Each got its own, one delivery at a time:
    Ctrl-C in a map of two million tasks took 21 s to take effect."""
    submitter = rc.submitter
    made: list[par.AsyncResult] = []
    new_result, send = submitter.new_result, submitter.send
    sends = iter(range(10**9))

    def remember(*args: object) -> par.AsyncResult:
        made.append(new_result(*args))  # type: ignore[arg-type]
        return made[-1]

    def interrupted(*args: object, **kwargs: object) -> None:
        if next(sends) == 2:
            raise KeyboardInterrupt
        send(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(submitter, "new_result", remember)
    monkeypatch.setattr(submitter, "send", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rc.load_balanced_view().map_async(str, range(5_000))
    monkeypatch.undo()
    assert rc.wait(timeout=30)
    assert rc.outstanding == set()
    (ar,) = made
    assert ar.ready() and not ar.successful()
    sent, unsent = ar.msg_ids[:256], ar.msg_ids[256:]  # two messages of 128 tasks went
    assert all(ar.metadata_of(m)["status"] == "ok" for m in sent)
    errors = {id(ar.error_of(m)) for m in unsent}
    assert len(errors) == 1
    assert "not sent" in str(ar.error_of(unsent[0]))
