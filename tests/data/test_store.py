"""Episode store: round trips, per-episode fields, validation errors and their messages."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from remix.common.errors import StoreError
from remix.data.store import EpisodeStore, validate_store


def _episode(length: int, seed: int = 0, image: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    episode = {
        "action": rng.normal(size=(length, 7)).astype(np.float32),
        "state": rng.normal(size=(length, 7)).astype(np.float32),
    }
    if image:
        episode["images/cam0"] = rng.integers(0, 255, size=(length, 8, 10, 3), dtype=np.uint8)
    return episode


@pytest.fixture
def store(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", fps=10, robot="mock", cameras={"cam0": (8, 10)})
    store.add_episode(_episode(5, 0), task="pick", domain="a", success=True, reward=1.5)
    store.add_episode(_episode(3, 1), task="place", domain="b", success=False, reward=0.5)
    return store


def test_round_trip_and_layout(store, tmp_path):
    reopened = EpisodeStore.open(tmp_path / "s.zarr")
    assert reopened.num_episodes == 2 and reopened.num_steps == 8
    assert reopened.episode_ends.tolist() == [5, 8]
    assert reopened.episode_lengths.tolist() == [5, 3]
    assert reopened.episode_bounds(1) == (5, 8)
    episode = reopened.read_episode(1)
    np.testing.assert_array_equal(episode["action"], _episode(3, 1)["action"])
    np.testing.assert_array_equal(episode["images/cam0"], _episode(3, 1)["images/cam0"])
    assert reopened.keys == ("action", "images/cam0", "state")
    assert reopened.array("images/cam0").chunks == (1, 8, 10, 3)
    assert reopened.fps == 10 and reopened.robot == "mock" and reopened.gripper_dims == (6,)
    assert reopened.cameras == {"cam0": (8, 10)}
    group = zarr.open_group(tmp_path / "s.zarr", mode="r")
    assert group["meta/episode_ends"].dtype == np.int64


def test_per_episode_fields_keep_types_and_fill_missing(store):
    assert store.field("task").tolist() == ["pick", "place"]
    assert store.field("success").tolist() == [True, False]
    assert store.field("reward").tolist() == [1.5, 0.5]
    store.add_episode(_episode(2, 2), task="push", operator="ann")
    assert store.field("operator").tolist() == ["", "", "ann"]
    assert store.field("success").tolist() == [True, False, False]
    assert np.isnan(store.field("reward")[2])


def test_refuses_bad_episodes_without_writing(store):
    bad = _episode(4, 3)
    bad["action"][2, 1] = np.nan
    with pytest.raises(StoreError, match=r"NaN/inf value at step 2, dim 1.*nothing was written"):
        store.add_episode(bad)
    with pytest.raises(StoreError, match="actions have 6 dims but"):
        store.add_episode({**_episode(4), "action": np.zeros((4, 6), np.float32)})
    with pytest.raises(StoreError, match="share one non-zero length"):
        store.add_episode({**_episode(4), "state": np.zeros((3, 7), np.float32)})
    with pytest.raises(StoreError, match="must be uint8"):
        store.add_episode({**_episode(4), "images/cam0": np.zeros((4, 8, 8, 3), np.uint8)})
    with pytest.raises(StoreError, match="differ from the store's"):
        store.add_episode(_episode(4, image=False))
    assert store.num_episodes == 2
    assert EpisodeStore.open(store.path).num_steps == 8


def test_create_refuses_existing_path(store):
    with pytest.raises(StoreError, match="already exists; open it with mode='a'"):
        EpisodeStore.create(store.path, fps=5)


def test_read_only_store_refuses_appends(store):
    with pytest.raises(StoreError, match="read-only"):
        EpisodeStore.open(store.path).add_episode(_episode(2))


def test_missing_path(tmp_path):
    with pytest.raises(StoreError, match=r"no episode store at .*nope.*check the path"):
        EpisodeStore.open(tmp_path / "nope")


def test_not_a_store(tmp_path):
    zarr.open_group(tmp_path / "other.zarr", mode="w").attrs["format"] = "something-else"
    with pytest.raises(StoreError, match="is not a Re-Mix episode store"):
        EpisodeStore.open(tmp_path / "other.zarr")


def test_missing_episode_ends(store):
    group = zarr.open_group(store.path, mode="r+")
    del group["meta/episode_ends"]
    with pytest.raises(StoreError, match="has no meta/episode_ends; the store is corrupt"):
        EpisodeStore.open(store.path)


def test_non_monotonic_ends(store):
    store.add_episode(_episode(2, 2), task="push")
    zarr.open_group(store.path, mode="r+")["meta/episode_ends"][:] = np.array([5, 4, 10])
    with pytest.raises(StoreError, match=r"not strictly increasing at episode 1 \(ends \[5, 4\]\)"):
        EpisodeStore.open(store.path)


def test_array_shorter_than_episode_ends(store):
    zarr.open_group(store.path, mode="r+")["data/state"].resize((6, 7))
    with pytest.raises(StoreError, match=r"data/state has 6 steps but meta/episode_ends needs 8 \(episode 1 is cut short\)"):
        EpisodeStore.open(store.path)


def test_wrong_dtype(store):
    group = zarr.open_group(store.path, mode="r+")
    del group["data/state"]
    group.create_array("data/state", shape=(8, 7), dtype="float64", chunks=(8, 7))
    with pytest.raises(StoreError, match="data/state has dtype float64, expected float32"):
        EpisodeStore.open(store.path)


def test_nan_in_stored_actions_names_episode_and_step(store):
    zarr.open_group(store.path, mode="r+")["data/action"][6, 3] = np.inf
    with pytest.raises(StoreError, match=r"data/action has a NaN/inf at episode 1, step 1 \(dim 3\)"):
        EpisodeStore.open(store.path)


def test_validate_lists_every_problem_and_changes_nothing(store):
    group = zarr.open_group(store.path, mode="r+")
    group["data/state"].resize((6, 7))
    group["meta/task"].resize((1,))
    problems = validate_store(store.path)
    assert len(problems) == 2
    assert "data/state has 6 steps" in problems[0] and "meta/task has 1 entries for 2 episodes" in problems[1]
    assert zarr.open_group(store.path, mode="r")["data/action"].shape == (8, 7)
    assert validate_store(store.path.parent / "missing") == [f"no episode store at {store.path.parent / 'missing'}; check the path or create one (remix-data synthetic OUT)"]


def test_uncommitted_steps_are_invisible_then_dropped_on_append(store):
    group = zarr.open_group(store.path, mode="r+")
    for key, width in (("action", (7,)), ("state", (7,)), ("images/cam0", (8, 10, 3))):
        group[f"data/{key}"].resize((11, *width))  # a writer died after writing 3 steps of episode 2
    group["meta/task"].resize((3,))
    reader = EpisodeStore.open(store.path)
    assert reader.num_steps == 8 and reader.field("task").tolist() == ["pick", "place"]
    store.close()  # the writer that "died"
    appender = EpisodeStore.open(store.path, mode="a")
    assert appender.array("action").shape[0] == 8
    appender.add_episode(_episode(2, 9), task="again")
    assert EpisodeStore.open(store.path).field("task").tolist() == ["pick", "place", "again"]
