"""Statistics for success rates from a handful of binary trials.

Real-robot evaluations are small (10 trials per cell), so the normal-approximation interval is
useless at 0/10 or 10/10. We use the Wilson score interval per cell, the paper's "mean +- standard
error across tasks" for a policy's summary, and Newcombe's hybrid score interval (built from two
Wilson intervals) for the difference between two policies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054  # two-sided 95% standard normal quantile


@dataclass(frozen=True)
class Interval:
    """A point estimate with a lower and upper confidence bound."""

    estimate: float
    low: float
    high: float


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> Interval:
    """Wilson score interval for a binomial proportion; (nan, nan, nan) for zero trials."""
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return Interval(math.nan, math.nan, math.nan)
    p = successes / trials
    z2 = z * z
    denom = 1.0 + z2 / trials
    center = (p + z2 / (2 * trials)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # At 0/n and n/n the bound is exactly 0 or 1; avoid float residue there.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return Interval(p, low, high)


@dataclass(frozen=True)
class MeanStdErr:
    """Mean of per-task success rates and its standard error (nan with fewer than two tasks)."""

    mean: float
    stderr: float
    num_tasks: int


def mean_stderr(rates: Sequence[float]) -> MeanStdErr:
    """The paper's summary: mean across tasks +- sample std (ddof=1) / sqrt(number of tasks)."""
    values = [r for r in rates if not math.isnan(r)]
    n = len(values)
    if n == 0:
        return MeanStdErr(math.nan, math.nan, 0)
    mean = sum(values) / n
    if n == 1:
        return MeanStdErr(mean, math.nan, 1)
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return MeanStdErr(mean, math.sqrt(var / n), n)


def newcombe_difference(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, z: float = Z_95
) -> Interval:
    """Difference p_a - p_b of two independent proportions, Newcombe's hybrid score interval.

    (Newcombe 1998, method 10.) It stays inside [-1, 1] and behaves at 0/n and n/n, unlike the
    Wald interval.
    """
    a = wilson_interval(successes_a, trials_a, z)
    b = wilson_interval(successes_b, trials_b, z)
    if math.isnan(a.estimate) or math.isnan(b.estimate):
        return Interval(math.nan, math.nan, math.nan)
    diff = a.estimate - b.estimate
    low = diff - math.sqrt((a.estimate - a.low) ** 2 + (b.high - b.estimate) ** 2)
    high = diff + math.sqrt((a.high - a.estimate) ** 2 + (b.estimate - b.low) ** 2)
    return Interval(diff, max(-1.0, low), min(1.0, high))
