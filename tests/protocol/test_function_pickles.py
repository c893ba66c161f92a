"""A function sent again is pickled again only if its pickle could have changed."""

from __future__ import annotations

import numpy as np
import par
from par import serialize

setting: object = 1
table: list[int] = [1, 2]


def uses_setting() -> object:
    return setting


def uses_table() -> int:
    return sum(table)


def helper() -> str:
    return "first"


def uses_helper() -> str:
    return helper()


def with_default(x: int = 1) -> int:
    return x


def _round_trip(f: object) -> object:
    data, _ = serialize.dumps_function(f)  # type: ignore[arg-type]
    return serialize.loads(data)()


def test_a_replaced_global_is_seen_even_when_equal_to_the_old_value() -> None:
    global setting
    for value in (1, 1.0, True, -0.0, 0.0, "one"):
        setting = value
        got = _round_trip(uses_setting)
        assert got == value and type(got) is type(value) and repr(got) == repr(value)


def test_a_global_mutated_in_place_is_seen() -> None:
    assert _round_trip(uses_table) == 3
    table.append(10)
    assert _round_trip(uses_table) == 13


def test_a_redefined_helper_function_is_seen() -> None:
    global helper
    assert _round_trip(uses_helper) == "first"

    def helper() -> str:
        return "second"

    assert _round_trip(uses_helper) == "second"


def test_replaced_defaults_are_seen() -> None:
    assert _round_trip(with_default) == 1
    with_default.__defaults__ = (7,)
    assert _round_trip(with_default) == 7


def test_an_unchanged_function_is_not_pickled_again() -> None:
    first = serialize.dumps_function(uses_setting)
    assert serialize.dumps_function(uses_setting)[0] is first[0]


def test_engines_see_each_change_of_a_reused_function(rc: par.Client) -> None:
    global setting
    lv = rc.load_balanced_view()
    for value in (1, True, 2.5, "x"):
        setting = value
        got = lv.apply_sync(uses_setting)
        assert got == value and type(got) is type(value)


def test_an_apply_async_loop_of_mixed_requests_keeps_every_result_and_order(
    rc: par.Client,
) -> None:
    """Requests made while the client's I/O thread is busy are merged; none may be lost."""
    lv = rc.load_balanced_view()
    dv = rc[0]
    ars = []
    for i in range(3000):
        if i % 500 == 0:
            ars.append(dv.apply_async(lambda k: ("direct", k), i))
        elif i % 3 == 0:
            ars.append(lv.apply_async(np.sum, np.full(20_000, i, dtype=np.int64)))
        elif i % 7 == 0:
            with lv.temp_flags(retries=1):
                ars.append(lv.apply_async(str, i))
        else:
            ars.append(lv.apply_async(abs, -i))
    for i, ar in enumerate(ars):
        got = ar.get(timeout=60)
        if i % 500 == 0:
            assert got == ("direct", i)
        elif i % 3 == 0:
            assert got == 20_000 * i
        elif i % 7 == 0:
            assert got == str(i)
        else:
            assert got == i


def test_plain_arguments_round_trip_as_they_were() -> None:
    """Small builtin arguments (a map's range chunks among them) skip cloudpickle."""
    for value in ((range(5, 6),), {"a": (1, 2.5, "x", None)}, [b"abc", True, -0.0], range(0)):
        data, buffers = serialize.dumps(value)
        back = serialize.loads(data, buffers)
        assert back == value and type(back) is type(value) and not buffers


def test_the_caches_of_function_pickles_stay_bounded() -> None:
    """Sending ever new functions (say, code compiled at run time) must not grow memory."""
    for i in range(3 * serialize.FUNCTION_CACHE_SIZE):
        namespace: dict[str, object] = {}
        exec(compile(f"def f():\n    return {i}\n", f"<generated {i}>", "exec"), namespace)
        assert _round_trip(namespace["f"]) == i
    assert len(serialize._function_cache) <= serialize.FUNCTION_CACHE_SIZE
    assert len(serialize._global_names) <= serialize.FUNCTION_CACHE_SIZE
