"""Window sampler: edge padding, goal relabeling, masks, pickling for loader workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from remix.common.errors import StoreError
from remix.data import EpisodeStore, WindowSampler, split_episodes


@pytest.fixture
def store(tmp_path):
    store = EpisodeStore.create(tmp_path / "w.zarr", fps=5, cameras={"cam0": (4, 4)})
    for episode, length in enumerate((4, 6)):
        steps = np.arange(length, dtype=np.float32) + 100 * episode
        store.add_episode(
            {
                "action": np.repeat(steps[:, None], 7, axis=1),
                "state": np.repeat(steps[:, None], 7, axis=1) + 0.5,
                "images/cam0": np.broadcast_to(steps.astype(np.uint8)[:, None, None, None], (length, 4, 4, 3)).copy(),
            },
            domain=f"d{episode}",
        )
    return store


def test_history_padded_at_episode_start(store):
    sampler = WindowSampler(store, n_obs=3, horizon=2, obs_keys=("state", "images/cam0"))
    first = sampler[0]
    assert first["obs"]["state"][:, 0].tolist() == [0.5, 0.5, 0.5]
    second_episode = sampler[4]
    assert second_episode["episode"] == 1 and second_episode["step"] == 0
    assert second_episode["obs"]["state"][:, 0].tolist() == [100.5, 100.5, 100.5]
    assert sampler[6]["obs"]["images/cam0"][:, 0, 0, 0].tolist() == [100, 101, 102]


def test_action_chunk_padded_at_episode_end_and_marked(store):
    sampler = WindowSampler(store, n_obs=1, horizon=4)
    last_of_first = sampler[3]
    assert last_of_first["action"][:, 0].tolist() == [3, 3, 3, 3]
    assert last_of_first["action_valid"].tolist() == [True, False, False, False]
    assert sampler[1]["action"][:, 0].tolist() == [1, 2, 3, 3]


def test_goal_is_last_frame_of_episode(store):
    sampler = WindowSampler(store, obs_keys=("state",), goal_keys=("state", "images/cam0"))
    assert sampler[0]["goal"]["state"][0] == 3.5
    assert sampler[5]["goal"]["state"][0] == 105.5
    assert sampler[5]["goal"]["images/cam0"].shape == (4, 4, 3)


def test_episode_mask_selects_samples(store):
    sampler = WindowSampler(store, episode_mask=np.array([False, True]))
    assert len(sampler) == 6
    assert set(sampler.episode_of_sample.tolist()) == {1}
    assert sampler[0]["obs"]["state"][-1, 0] == 100.5
    with pytest.raises(StoreError, match="episode mask has shape"):
        WindowSampler(store, episode_mask=np.array([True]))


def test_unknown_key_is_a_clear_error(store):
    with pytest.raises(StoreError, match=r"has no data keys \['images/wrist'\]"):
        WindowSampler(store, obs_keys=("images/wrist",))


def test_pickles_without_the_open_store_and_feeds_a_dataloader(store):
    sampler = WindowSampler(store.path, n_obs=2, horizon=3, obs_keys=("state", "images/cam0"), goal_keys=("images/cam0",))
    clone = pickle.loads(pickle.dumps(sampler))
    assert clone._store is None
    np.testing.assert_array_equal(clone[7]["action"], sampler[7]["action"])
    loader = torch.utils.data.DataLoader(sampler, batch_size=4, num_workers=2, shuffle=False)
    batches = list(loader)
    assert sum(len(b["episode"]) for b in batches) == 10
    assert batches[0]["obs"]["images/cam0"].shape == (4, 2, 4, 4, 3)


def test_split_episodes_is_seeded_and_disjoint():
    train, val = split_episodes(20, 0.2, seed=3)
    assert val.sum() == 4 and not np.any(train & val) and np.all(train | val)
    again, _ = split_episodes(20, 0.2, seed=3)
    np.testing.assert_array_equal(train, again)
    train_small, val_small = split_episodes(2, 0.1)
    assert val_small.sum() == 1 and train_small.sum() == 1
    with pytest.raises(StoreError, match="validation fraction"):
        split_episodes(10, 1.0)
