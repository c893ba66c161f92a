"""Functions and data: remote, parallel, require, depend, dependent, interactive, Reference."""

from __future__ import annotations

import os

import par
import pytest


def pid() -> int:
    import os

    return os.getpid()


def double_all(xs: list[int]) -> list[int]:
    return [2 * x for x in xs]


def test_remote_decorator(rc: par.Client) -> None:
    dv = rc[:]
    f = par.remote(dv, block=True)(pid)
    assert len(set(f())) == len(rc.ids) and f.__name__ == "pid"

    @dv.remote(block=False)
    def add(a: int, b: int) -> int:
        return a + b

    ar = add(1, b=2)
    assert isinstance(ar, par.AsyncResult) and ar.get() == [3] * len(rc.ids)
    single = rc[0].remote(block=True)(pid)
    assert isinstance(single(), int)
    with pytest.raises(KeyError, match="invalid flag"):
        par.remote(dv, colour="red")(pid)
    with pytest.raises(TypeError, match="callable"):
        par.remote(dv)(42)


def test_parallel_decorator(rc: par.Client) -> None:
    dv = rc[:]
    f = par.parallel(dv, block=True)(double_all)
    assert f(range(10)) == [2 * x for x in range(10)]
    g = dv.parallel(dist="r", block=True)(double_all)
    assert g(list(range(7))) == [2 * x for x in range(7)]
    assert f.map([[1], [2, 3]]) == [[2], [4, 6]]
    lv = rc.load_balanced_view()
    h = lv.parallel(block=True, chunksize=3)(double_all)
    assert h(range(10)) == [2 * x for x in range(10)]
    ar = lv.parallel()(double_all).map([[1]])
    assert ar.get() == [[2]]
    with pytest.raises(ValueError, match="dist"):
        dv.parallel(dist="z")
    with pytest.raises(ValueError, match="chunksize"):
        lv.parallel(chunksize=0)
    with pytest.raises(TypeError, match="at least one sequence"):
        f()


def test_require_imports_and_pushes(rc: par.Client) -> None:
    def helper() -> str:
        return "helped"

    @par.require("json", helper, factor=3)
    def uses() -> str:
        return json.dumps([helper(), factor])  # type: ignore[name-defined]  # noqa: F821

    assert rc[:].apply_sync(uses) == ['["helped", 3]'] * len(rc.ids)

    @par.require("no_such_module_par")
    def impossible() -> None:
        pass

    with pytest.raises(par.RemoteError) as info:
        rc[0].apply_sync(impossible)
    assert info.value.ename == "UnmetDependency"
    with pytest.raises(TypeError, match="name=value"):
        par.require(3)


def test_depend_and_dependent(rc: par.Client) -> None:
    def on_engine(eid_pid: int) -> bool:
        import os

        return os.getpid() == eid_pid

    pids = dict(zip(rc.ids, rc[:].apply_sync(pid), strict=True))
    target = rc.ids[0]

    @par.depend(on_engine, pids[target])
    def here() -> int:
        return 1

    assert rc[target].apply_sync(here) == 1
    with pytest.raises(par.RemoteError) as info:
        rc[rc.ids[1]].apply_sync(here)
    assert info.value.ename == "UnmetDependency" and "on_engine" in info.value.evalue
    g = par.dependent(pid, on_engine, pids[target])
    assert rc[target].apply_sync(g) == pids[target]
    with pytest.raises(TypeError, match="callable"):
        par.depend(5)
    with pytest.raises(TypeError, match="callable"):
        par.dependent(pid, 5)


def test_interactive_and_globals(rc: par.Client) -> None:
    dv = rc[:]
    dv.push({"scale": 10}, block=True)

    @par.interactive
    def scaled(x: int) -> int:
        return x * scale  # type: ignore[name-defined]  # noqa: F821

    assert dv.apply_sync(scaled, 2) == [20] * len(rc.ids)
    offset = 5

    def with_global(x: int) -> int:
        return x + offset

    assert dv.apply_sync(with_global, 1) == [6] * len(rc.ids)


ONLY_ON_THE_CLIENT = 3  # a global of this module, which @interactive functions leave behind


def test_interactive_functions_resolve_names_in_main(rc: par.Client) -> None:
    @par.interactive
    def scaled(x: int) -> int:
        return x * ONLY_ON_THE_CLIENT

    assert scaled.__module__ == "__main__"
    with pytest.raises(par.RemoteError, match="NameError"):
        rc[0].apply_sync(scaled, 2)
    rc[0].push({"ONLY_ON_THE_CLIENT": 5}, block=True)
    assert rc[0].apply_sync(scaled, 2) == 10
    with pytest.raises(NameError):  # called here, it looks in this process's __main__
        scaled(2)


def test_pushed_interactive_functions_see_the_engine_namespace(rc: par.Client) -> None:
    @par.interactive
    def get_level() -> int:
        return level  # type: ignore[name-defined]  # noqa: F821

    dv = rc[1]
    dv["get_level"] = get_level
    with pytest.raises(par.RemoteError, match="NameError"):
        dv.execute("seen = get_level()", block=True)
    dv.execute("level = 7\nseen = get_level()", block=True)
    assert dv["seen"] == 7


def test_references_and_keys_may_be_expressions(rc: par.Client) -> None:
    dv = rc[0]
    dv.execute("class Box: pass\nbox = Box()\nbox.size = 3\nitems = [10, 20]", block=True)
    assert dv.apply_sync(lambda v: v, par.Reference("items[1]")) == 20
    assert dv.apply_sync(lambda v: v, par.Reference("box.size")) == 3
    assert dv["box.size"] == 3
    dv["box.size"] = 4
    dv.push({"items[0]": 11}, block=True)
    assert dv.pull(["box.size", "items"], block=True) == [4, [11, 20]]
    with pytest.raises(par.RemoteError, match="cannot push to 'not a name'"):
        dv.push({"not a name": 1}, block=True)
    with pytest.raises(par.RemoteError, match="NameError"):
        dv["no_such_box.size"]


def test_reference(rc: par.Client) -> None:
    dv = rc[:]
    dv.scatter("part", list(range(len(rc.ids))), block=True)
    assert dv.apply_sync(lambda v: v, par.Reference("part")) == [[i] for i in range(len(rc.ids))]
    with pytest.raises(par.RemoteError, match="not defined"):
        rc[0].apply_sync(lambda v: v, par.Reference("never_defined"))
    with pytest.raises(TypeError, match="variable name"):
        par.Reference("not a name")
    assert repr(par.Reference("x")) == "Reference('x')"


def test_a_reference_applied_calls_the_engines_function(rc: par.Client) -> None:
    dv = rc[:]
    dv.scatter("n", rc.ids, flatten=True, block=True)
    dv.execute("f = lambda x: n * x", block=True)
    assert dv.apply_sync(par.Reference("f"), 5) == [5 * i for i in rc.ids]
    dv.execute("f = lambda x: -x", block=True)  # looked up at each call, never kept
    assert dv.apply_sync(par.Reference("f"), 5) == [-5] * len(rc.ids)
    lv = rc.load_balanced_view()
    assert lv.apply_sync(par.Reference("f"), x=2) == -2
    with pytest.raises(par.RemoteError, match="not defined"):
        rc[0].apply_sync(par.Reference("never_defined"))


def test_zero_copy_arrays_and_track(rc: par.Client) -> None:
    import numpy as np

    a = np.arange(1 << 18, dtype=np.float64)
    dv = rc[0]
    dv.push({"a": a}, block=True)
    back = dv.pull("a", block=True)
    # A received array points into the message it came in: it owns no copy of its data.
    assert np.array_equal(back, a) and not back.flags.owndata
    assert dv.apply_sync(lambda v: v.flags.owndata, par.Reference("a")) is False
    with rc.load_balanced_view().temp_flags(track=True) as lv:
        ar = lv.apply_async(np.sum, a)
        assert ar.wait_for_send(5) and ar.sent
    assert ar.get() == a.sum()


def test_sendable_by_value_from_this_process(rc: par.Client) -> None:
    here = os.getpid()
    assert rc[0].apply_sync(lambda: here) == here
