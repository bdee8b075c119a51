"""Interval arithmetic checked against published values (Newcombe 1998, Stat. Med. 17:857 and 17:873)."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eval.stats import mean_stderr, newcombe_difference, wilson_interval


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
     (29, 29, 0.8830, 1.0), (7, 10, 0.3968, 0.8922), (0, 10, 0.0, 0.2775)],
)
def test_wilson_matches_published_values(successes, trials, low, high):
    interval = wilson_interval(successes, trials)
    assert interval.estimate == pytest.approx(successes / trials)
    assert interval.low == pytest.approx(low, abs=5e-5)
    assert interval.high == pytest.approx(high, abs=5e-5)


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [((56, 70), (48, 80), 0.0524, 0.3339), ((9, 10), (3, 10), 0.1705, 0.8090), ((6, 7), (2, 7), 0.0582, 0.8062),
     ((5, 56), (0, 29), -0.0381, 0.1926), ((0, 10), (0, 20), -0.1611, 0.2775), ((0, 10), (0, 10), -0.2775, 0.2775)],
)
def test_newcombe_difference_matches_published_values(a, b, low, high):
    interval = newcombe_difference(*a, *b)
    assert interval.estimate == pytest.approx(a[0] / a[1] - b[0] / b[1])
    assert interval.low == pytest.approx(low, abs=5e-5)
    assert interval.high == pytest.approx(high, abs=5e-5)


def test_mean_stderr_by_hand():
    # rates 0.7, 0.3, 0.5, 0.9: mean 0.6, deviations .1 -.3 -.1 .3 -> var = 0.2/3, se = sqrt(0.2/3/4)
    summary = mean_stderr([0.7, 0.3, 0.5, 0.9])
    assert summary.mean == pytest.approx(0.6)
    assert summary.stderr == pytest.approx(math.sqrt(0.2 / 3 / 4))
    assert summary.num_tasks == 4


def test_mean_stderr_edge_cases():
    one = mean_stderr([0.4])
    assert one.mean == pytest.approx(0.4) and math.isnan(one.stderr) and one.num_tasks == 1
    none = mean_stderr([])
    assert math.isnan(none.mean) and none.num_tasks == 0
    assert mean_stderr([0.5, math.nan, 0.5]).num_tasks == 2  # tasks without scored trials are skipped


def test_wilson_rejects_impossible_counts_and_handles_zero_trials():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(-1, 2)
    assert math.isnan(wilson_interval(0, 0).estimate)
    assert math.isnan(newcombe_difference(0, 0, 1, 2).estimate)


@given(st.integers(0, 60).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))).filter(lambda c: c[1] > 0))
def test_wilson_is_a_proper_interval(counts):
    successes, trials = counts
    interval = wilson_interval(successes, trials)
    assert 0.0 <= interval.low <= interval.estimate <= interval.high <= 1.0
    assert interval.high - interval.low > 0  # never collapses to a point at 0/n or n/n, unlike Wald


@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_newcombe_contains_the_difference_and_stays_in_range(n_a, n_b, data):
    s_a, s_b = data.draw(st.integers(0, n_a)), data.draw(st.integers(0, n_b))
    interval = newcombe_difference(s_a, n_a, s_b, n_b)
    assert -1.0 <= interval.low <= interval.estimate <= interval.high <= 1.0
    mirrored = newcombe_difference(s_b, n_b, s_a, n_a)
    assert mirrored.low == pytest.approx(-interval.high) and mirrored.high == pytest.approx(-interval.low)
