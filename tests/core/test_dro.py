"""The Group DRO alpha update against hand-computed numbers, and its settings."""

from __future__ import annotations

import math

import pytest
import torch

from remix.common.errors import ConfigError
from remix.core.dro import DomainSums, DROConfig, GroupDRO

# Batch: domain 0 has excess [0.5, -0.2, 0.3]; domain 1 has [-0.1]; domain 2 is absent.
EXCESS = torch.tensor([0.5, -0.2, 0.3, -0.1])
DOMAINS = torch.tensor([0, 0, 0, 1])
ALPHA0 = [0.5, 0.3, 0.2]


def _expected(scores: list[float], eta: float, smoothing: float, target: list[float]) -> list[float]:
    raw = [a * math.exp(eta * s) for a, s in zip(ALPHA0, scores)]
    z = sum(raw)
    mixed = [(1 - smoothing) * r / z + smoothing * t for r, t in zip(raw, target)]
    return [m / sum(mixed) for m in mixed]


def test_release_update_positive_scoring_matches_hand_computation() -> None:
    dro = GroupDRO(ALPHA0, DROConfig(eta=1.0, smoothing=0.1))
    sums = DomainSums.of(EXCESS, DOMAINS, 3, clip=True)
    score = dro.update(sums)
    # positive: domain 0 = mean(0.5, 0.3) = 0.4; domain 1 has no positive excess -> 0; absent -> 0
    torch.testing.assert_close(score, torch.tensor([0.4, 0.0, 0.0], dtype=torch.float64))
    expected = _expected([0.4, 0.0, 0.0], 1.0, 0.1, ALPHA0)
    torch.testing.assert_close(dro.alpha, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(dro.average, dro.alpha)  # alpha0 is not part of the average
    # loss = sum_d alpha_d * mean unclipped excess: domain 0 mean 0.2, domain 1 mean -0.1
    loss = dro.loss(EXCESS, DOMAINS, sums)
    assert loss.item() == pytest.approx(expected[0] * 0.2 + expected[1] * -0.1, rel=1e-6)


def test_all_scoring_uniform_target_and_absent_last() -> None:
    dro = GroupDRO(
        ALPHA0, DROConfig(eta=2.0, smoothing=0.2, smoothing_target="uniform", scoring="all", absent="last")
    )
    score = dro.update(DomainSums.of(EXCESS, DOMAINS, 3, clip=True))
    # all: domain 0 = (0.5 + 0 + 0.3) / 3; domain 1 = 0 / 1
    torch.testing.assert_close(score, torch.tensor([0.8 / 3, 0.0, 0.0], dtype=torch.float64))
    expected = _expected([0.8 / 3, 0.0, 0.0], 2.0, 0.2, [1 / 3] * 3)
    torch.testing.assert_close(dro.alpha, torch.tensor(expected, dtype=torch.float64))
    first = dro.alpha.clone()
    # next batch has only domain 2, scoring 1.0; domain 0 is absent and keeps its last score
    score2 = dro.update(DomainSums.of(torch.tensor([1.0]), torch.tensor([2]), 3, clip=True))
    torch.testing.assert_close(score2, torch.tensor([0.8 / 3, 0.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(dro.average, (first + dro.alpha) / 2)


def test_unclipped_scoring_can_be_negative() -> None:
    dro = GroupDRO(ALPHA0, DROConfig(clip_excess=False, scoring="all"))
    score = dro.update(DomainSums.of(EXCESS, DOMAINS, 3, clip=False))
    torch.testing.assert_close(score, torch.tensor([0.2, -0.1, 0.0], dtype=torch.float64))


def test_persistent_excess_moves_weight_and_stays_normalized() -> None:
    dro = GroupDRO([1 / 3] * 3, DROConfig(eta=1.0, smoothing=0.05))
    for _ in range(200):
        dro.update(DomainSums.of(torch.tensor([0.0, 1.0, 0.0]), torch.tensor([0, 1, 2]), 3, clip=True))
    assert dro.alpha[1] > 0.9 and abs(dro.alpha.sum().item() - 1) < 1e-12
    assert dro.alpha.min() >= 0.05 / 3 - 1e-12  # smoothing keeps every domain alive
    assert dro.average[1] < dro.alpha[1]  # the time average lags the instantaneous weights


def test_huge_scores_do_not_overflow() -> None:
    dro = GroupDRO([0.5, 0.5], DROConfig(eta=1.0, smoothing=0.0))
    dro.update(DomainSums.of(torch.tensor([5000.0, 0.0]), torch.tensor([0, 1]), 2, clip=True))
    assert torch.isfinite(dro.alpha).all() and dro.alpha[0].item() == pytest.approx(1.0)


def test_loss_gradient_flows_only_through_proxy() -> None:
    proxy = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    ref = torch.tensor([0.5, 0.5, 0.5])
    domains = torch.tensor([0, 0, 1])
    dro = GroupDRO([0.5, 0.5], DROConfig())
    sums = DomainSums.of(proxy - ref, domains, 2, clip=True)
    dro.update(sums)
    dro.loss(proxy - ref, domains, sums).backward()
    a = dro.alpha.float()
    torch.testing.assert_close(proxy.grad, torch.stack([a[0] / 2, a[0] / 2, a[1]]))


@pytest.mark.parametrize(
    "kwargs",
    [{"eta": 0.0}, {"smoothing": 1.5}, {"scoring": "max"}, {"smoothing_target": "size"}, {"absent": "skip"}],
)
def test_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        DROConfig(**kwargs)


def test_unlearnable_domains_score_zero_only_when_asked() -> None:
    sums = DomainSums.of(EXCESS, DOMAINS, 3, clip=True)
    flagged = [True, False, False]  # domain 0 has the largest positive excess but was found unlearnable
    zero = GroupDRO(ALPHA0, DROConfig(eta=1.0, smoothing=0.1, unlearnable="zero"), flagged)
    torch.testing.assert_close(zero.update(sums), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(zero.alpha, torch.tensor(ALPHA0, dtype=torch.float64))
    release = GroupDRO(ALPHA0, DROConfig(eta=1.0, smoothing=0.1, unlearnable="score"), flagged)
    assert release.update(sums)[0].item() == pytest.approx(0.4)
    with pytest.raises(ConfigError):
        GroupDRO(ALPHA0, DROConfig(), [True])
    with pytest.raises(ConfigError):
        DROConfig(unlearnable="drop")  # type: ignore[arg-type]


def test_state_dict_round_trip_continues_identically() -> None:
    sums = DomainSums.of(EXCESS, DOMAINS, 3, clip=True)
    a = GroupDRO(ALPHA0, DROConfig(eta=1.0))
    a.update(sums)
    b = GroupDRO(ALPHA0, DROConfig(eta=1.0))
    b.load_state_dict(a.state_dict())
    a.update(sums), b.update(sums)
    torch.testing.assert_close(a.average, b.average)
    assert a.steps == b.steps == 2
