"""Units, clusters, budget filling, ridge datamodel and the selection writer of remix-select."""

from __future__ import annotations

import numpy as np
import pytest

from remix.data import EpisodeStore
from remix.data.domains import discover_domains
from remix.data.synthetic import SyntheticDomain, make_synthetic_store
from remix.select.data import Unit, cluster_units, make_units
from remix.select.estimators import rank_correlation, ridge_fit
from remix.select.selection import fill_budget, merge_ranges


def test_segments_cover_every_step_and_short_tails_join_the_previous_segment(tmp_path):
    make_synthetic_store(tmp_path / "a.zarr", SyntheticDomain("a", num_episodes=2, episode_length=23))
    units = make_units(discover_domains([tmp_path / "a.zarr"], None), "segment", 10)
    assert [(u.episode, u.start, u.stop) for u in units] == [(0, 0, 10), (0, 10, 23), (1, 0, 10), (1, 10, 23)]
    episodes = make_units(discover_domains([tmp_path / "a.zarr"], None), "episode", 10)
    assert [(u.start, u.stop) for u in episodes] == [(0, 23), (0, 23)]


def test_kmeans_separates_two_well_apart_groups_and_zero_keeps_units():
    rng = np.random.default_rng(0)
    embedding = np.concatenate([rng.normal(0, 0.1, (10, 3)), rng.normal(5, 0.1, (10, 3))])
    labels = cluster_units(embedding, 2, seed=0)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]
    assert cluster_units(embedding, 0, seed=0).tolist() == list(range(20))


def test_ridge_recovers_the_effect_of_each_cluster():
    rng = np.random.default_rng(1)
    effect = np.array([-0.5, 0.0, 0.3, -0.2, 0.4])  # change of the loss when a cluster is in
    masks = (rng.random((200, 5)) < 0.5).astype(float)
    loss = 3.0 + masks @ effect + rng.normal(0, 0.05, 200)
    fit = ridge_fit(masks, loss, (0.01, 1.0, 100.0))
    assert np.allclose(fit.coef, effect, atol=0.05)
    assert fit.strength < 100.0 and fit.loo_r2 > 0.9
    assert np.all(fit.stderr > 0.001) and np.all(fit.stderr < 0.02)  # noise 0.05 over 200 runs: about 0.007
    assert np.all(np.abs(fit.coef - effect) < 4 * fit.stderr)
    assert rank_correlation(-fit.coef, -effect) == pytest.approx(1.0)


def test_fill_budget_takes_the_prefix_closest_to_the_budget():
    steps = np.array([10, 10, 10, 10])
    order = np.array([2, 0, 3, 1])
    assert fill_budget(order, steps, 21).tolist() == [True, False, True, False]
    assert not fill_budget(order[:0], steps, 21).any()  # nothing allowed: nothing kept


def test_adjacent_segments_are_written_as_one_episode(tmp_path):
    path = tmp_path / "a.zarr"
    units = [Unit("a", path, 0, 10, 20), Unit("a", path, 0, 0, 10), Unit("a", path, 1, 10, 20), Unit("a", path, 3, 0, 5)]
    assert merge_ranges(units)[path] == [(0, 0, 20, "a"), (1, 10, 20, "a"), (3, 0, 5, "a")]


def test_domain_key_splits_a_store(tmp_path):
    make_synthetic_store(tmp_path / "b.zarr", SyntheticDomain("b", num_episodes=4, scenes=("s1", "s2")))
    domains = discover_domains([tmp_path / "b.zarr"], "scene")
    assert [(d.name, d.episodes) for d in domains] == [("s1", (0, 2)), ("s2", (1, 3))]
    assert EpisodeStore.open(tmp_path / "b.zarr").num_episodes == 4
