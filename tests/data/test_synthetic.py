"""Synthetic domains have the structure their specs promise."""

from __future__ import annotations

import numpy as np

from remix.data import EpisodeStore
from remix.data.synthetic import (
    DEFAULT_DOMAINS,
    STEP_LIMITS,
    SyntheticDomain,
    make_synthetic_dataset,
    make_synthetic_store,
)


def _fit_residual(store: EpisodeStore) -> float:
    """Relative residual of a least-squares fit of xyz actions on (goal state - state)."""
    rows, targets = [], []
    for index in range(store.num_episodes):
        episode = store.read_episode(index, ("state", "action"))
        goal = episode["state"][-1]
        rows.append(np.concatenate([goal[:3] - episode["state"][:, :3], np.ones((len(episode["state"]), 1))], axis=1))
        targets.append(episode["action"][:, :3])
    features, target = np.concatenate(rows), np.concatenate(targets)
    coef, *_ = np.linalg.lstsq(features, target, rcond=None)
    return float(np.linalg.norm(features @ coef - target) / np.linalg.norm(target - target.mean(0)))


def test_learnable_domain_is_predictable_and_pure_noise_is_not(tmp_path):
    clean = make_synthetic_store(tmp_path / "c.zarr", SyntheticDomain("clean", num_episodes=15, action_noise=0.0))
    noise = make_synthetic_store(tmp_path / "n.zarr", SyntheticDomain("noise", num_episodes=15, pure_noise=True))
    assert _fit_residual(clean) < 0.5
    assert _fit_residual(noise) > 0.9


def test_action_scale_changes_units_only(tmp_path):
    metres = make_synthetic_store(tmp_path / "m.zarr", SyntheticDomain("m", num_episodes=3), seed=1)
    centi = make_synthetic_store(tmp_path / "cm.zarr", SyntheticDomain("m", num_episodes=3, action_scale=100), seed=1)
    np.testing.assert_allclose(centi.array("action")[:, :6], 100 * metres.array("action")[:, :6], rtol=1e-5)
    np.testing.assert_array_equal(centi.array("action")[:, 6], metres.array("action")[:, 6])
    np.testing.assert_array_equal(centi.array("state")[:], metres.array("state")[:])


def test_noise_level_is_respected(tmp_path):
    store = make_synthetic_store(tmp_path / "s.zarr", SyntheticDomain("s", num_episodes=10, pure_noise=True))
    std = store.array("action")[:, :6].std(axis=0)
    np.testing.assert_allclose(std, STEP_LIMITS, rtol=0.15)


def test_scenes_images_and_fields(tmp_path):
    domain = SyntheticDomain("bridge", num_episodes=6, image_size=16, scenes=("sink", "desk", "oven"))
    store = make_synthetic_store(tmp_path / "b.zarr", domain)
    assert store.field("scene").tolist() == ["sink", "desk", "oven"] * 2
    assert set(store.fields) >= {"domain", "scene", "task"}
    images = store.array("images/cam0")
    assert images.shape == (150, 16, 16, 3) and images.dtype == np.uint8
    assert len({images[t].tobytes() for t in range(25)}) > 5, "images must reflect the moving state"


def test_default_dataset_one_store_per_domain(tmp_path):
    paths = make_synthetic_dataset(tmp_path, episode_length=5)
    assert [p.name for p in paths] == [f"{d.name}.zarr" for d in DEFAULT_DOMAINS]
    for path, domain in zip(paths, DEFAULT_DOMAINS):
        store = EpisodeStore.open(path)
        assert store.num_episodes == domain.num_episodes and store.num_steps == 5 * domain.num_episodes
        assert set(store.field("domain").tolist()) == {domain.name}
