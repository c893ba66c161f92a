"""The heartbeat interval for an engine count (controller/heartbeats.py)."""

from __future__ import annotations

from par.controller.heartbeats import LONGEST, interval


def test_the_base_interval_holds_until_the_beats_pass_the_rate() -> None:
    assert interval(1.0, 1000, 1000) == 1.0
    assert interval(0.5, 500, 1000) == 0.5


def test_past_the_rate_it_grows_in_whole_seconds_up_to_the_longest() -> None:
    assert interval(1.0, 1001, 1000) == 2.0
    assert interval(1.0, 5000, 1000) == 5.0
    assert interval(0.2, 300, 1000) == 1.0
    assert interval(1.0, 10_000, 1000) == 10.0
    assert interval(1.0, 50_000, 1000) == LONGEST


def test_it_is_never_shorter_than_the_base_and_zero_means_no_growth() -> None:
    assert interval(30.0, 50_000, 1000) == 30.0
    assert interval(1.0, 50_000, 0) == 1.0
