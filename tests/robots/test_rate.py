"""remix.common.rate.Rate: fixed-grid deadlines, no catch-up bursts after an overrun."""

from __future__ import annotations

import time

import pytest

from remix.common.rate import Rate


def test_ticks_land_on_the_grid() -> None:
    rate = Rate(100.0)
    starts = []
    for _ in range(10):
        starts.append(time.perf_counter())
        time.sleep(0.002)  # some work inside the tick
        rate.sleep()
    periods = [b - a for a, b in zip(starts, starts[1:])]
    assert sum(periods) / len(periods) == pytest.approx(0.01, abs=0.002)


def test_an_overrun_skips_ahead_instead_of_bursting() -> None:
    rate = Rate(100.0)
    time.sleep(0.035)  # 3.5 periods of work
    assert rate.sleep() > 0.02 and rate.late_ticks == 1
    started = time.perf_counter()
    rate.sleep()
    assert time.perf_counter() - started > 0.007, "the next tick waits a full period, no burst"


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Rate(0)
