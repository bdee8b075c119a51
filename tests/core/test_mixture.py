"""The weighted domain sampler: frequencies follow the weights, streams are reproducible, and
it feeds a DataLoader with workers over a ConcatDataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from remix.common.errors import ConfigError
from remix.data.mixture import WeightedDomainSampler, normalize_weights, size_weights


class _Tagged(Dataset):
    """Domain `d` with `n` examples; item = (domain, local index)."""

    def __init__(self, d: int, n: int) -> None:
        self.d, self.n = d, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[int, int]:
        return self.d, i


def test_domain_frequencies_follow_weights_not_sizes() -> None:
    sizes = [1000, 10, 300]
    weights = [0.2, 0.5, 0.3]
    sampler = WeightedDomainSampler(sizes, weights, num_samples=40000, seed=3)
    domains, local = sampler.draw()
    freq = np.bincount(domains, minlength=3) / domains.size
    np.testing.assert_allclose(freq, weights, atol=0.01)
    for d, n in enumerate(sizes):
        assert local[domains == d].min() >= 0 and local[domains == d].max() < n


def test_within_domain_each_example_once_per_pass() -> None:
    sampler = WeightedDomainSampler([7, 5], [0.5, 0.5], num_samples=200, seed=0)
    domains, local = sampler.draw()
    first = local[domains == 1][:5]
    assert sorted(first.tolist()) == [0, 1, 2, 3, 4]  # a full shuffled pass before any repeat
    counts = np.bincount(local[domains == 0], minlength=7)
    assert counts.max() - counts.min() <= 1


def test_zero_weight_domain_never_drawn_and_mapping_weights() -> None:
    sampler = WeightedDomainSampler([5, 5, 0], {"a": 1.0, "b": 0.0, "c": 0.0}, 500, names=["a", "b", "c"])
    assert set(sampler.domain_of(np.array(list(sampler)))) == {0}


def test_seeded_reproducible_and_epoch_rank_change_stream() -> None:
    a = WeightedDomainSampler([50, 60], [0.3, 0.7], 100, seed=1)
    b = WeightedDomainSampler([50, 60], [0.3, 0.7], 100, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    r0 = WeightedDomainSampler([50, 60], [0.3, 0.7], 100, seed=1, rank=0, world_size=2)
    r1 = WeightedDomainSampler([50, 60], [0.3, 0.7], 100, seed=1, rank=1, world_size=2)
    assert len(r0) == len(r1) == 50 and list(r0) != list(r1)


def test_pairs_match_flat_indices() -> None:
    sampler = WeightedDomainSampler([3, 4, 5], [1, 1, 1], 60, seed=2)
    flat = list(sampler)
    assert [sampler.locate(i) for i in flat] == list(sampler.pairs())


def test_dataloader_with_workers_over_concat_dataset() -> None:
    sizes = [20, 3]
    data = ConcatDataset([_Tagged(d, n) for d, n in enumerate(sizes)])
    sampler = WeightedDomainSampler(sizes, [0.5, 0.5], num_samples=64, seed=4)
    loader = DataLoader(data, batch_size=16, sampler=sampler, num_workers=2)
    got = [(int(d), int(i)) for dom, idx in loader for d, i in zip(dom, idx)]
    assert got == list(sampler.pairs())
    assert torch.tensor([d for d, _ in got]).float().mean().item() == pytest.approx(0.5, abs=0.2)


@pytest.mark.parametrize(
    "sizes, weights",
    [
        ([5, 5], [1.0]),  # wrong count
        ([5, 5], [1.0, -0.1]),  # negative
        ([5, 5], [float("nan"), 1.0]),  # NaN
        ([5, 5], [0.0, 0.0]),  # all zero
        ([5, 0], [0.5, 0.5]),  # empty domain with weight
        ([], []),  # no domains
    ],
)
def test_bad_weights_raise_one_line_config_error(sizes: list[int], weights: list[float]) -> None:
    with pytest.raises(ConfigError) as info:
        WeightedDomainSampler(sizes, weights, 10)
    assert "\n" not in str(info.value)


def test_weight_helpers() -> None:
    np.testing.assert_allclose(size_weights([1, 3]), [0.25, 0.75])
    np.testing.assert_allclose(normalize_weights([2, 2, 4]), [0.25, 0.25, 0.5])
    with pytest.raises(ConfigError):
        WeightedDomainSampler([2, 2], {"a": 1.0}, 10, names=["a", "b"])
