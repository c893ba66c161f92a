"""Which way a direct request goes (client/paths.py), without processes."""

from __future__ import annotations

from par.client.paths import Paths

E0, E1 = "00" * 16, "11" * 16


def _paths() -> Paths:
    return Paths({0: {"uuid": E0}, 1: {"uuid": E1}})


def test_requests_go_the_way_preferred_while_nothing_is_outstanding() -> None:
    paths = _paths()
    dev = [bytes.fromhex(E0), bytes.fromhex(E1)]
    assert paths.book(["a", "b"], [0, 1], hub=False) == [(dev, ["a", "b"], [0, 1])]
    paths.answered("a")
    paths.answered("b")
    assert paths.book(["c", "d"], [0, 1], hub=True) == [(None, ["c", "d"], [0, 1])]
    paths.answered("c")
    paths.answered("d")
    assert not paths.kept and not paths.engine_of


def test_an_engine_keeps_its_way_until_it_answered_everything_sent_that_way() -> None:
    paths = _paths()
    paths.book(["a"], [0], hub=False)  # engine 0: outstanding through the device
    paths.book(["b"], [1], hub=True)  # engine 1: through the hub
    # A request to both goes to each the way its earlier requests went: split in two.
    assert paths.book(["c", "d"], [0, 1], hub=True) == [
        ([bytes.fromhex(E0)], ["c"], [0]),
        (None, ["d"], [1]),
    ]
    for mid in ("a", "c"):
        paths.answered(mid)
    assert paths.book(["e"], [0], hub=True) == [(None, ["e"], [0])]  # now free to change
    assert paths.book(["f"], [1], hub=False) == [(None, ["f"], [1])]  # still "b", "d" out
    paths.answered("f")
    paths.answered("f")  # a second answer (an error after a reply) changes nothing
    kept = paths.kept[1]
    assert (kept.identity, kept.outstanding) == (None, 2)


def test_an_engine_this_client_does_not_know_is_asked_through_the_hub() -> None:
    paths = _paths()
    assert paths.book(["a"], [7], hub=False) == [(None, ["a"], [7])]
