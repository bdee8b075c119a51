"""LeRobot v2.1 / v3.0 import (pyarrow + PyAV) and export of a store to LeRobot v3.0, round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from remix.data.export.lerobot import export_lerobot
from remix.data.importers.common import SourceError
from remix.data.importers.options import build_options
from remix.data.importers.run import import_dataset
from remix.data.store import EpisodeStore, validate_store
from remix.data.synthetic import SyntheticDomain, make_synthetic_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lerobot"
MAPPING = {"action": "action", "state": "observation.state", "domain": {"from": "task"}}


@pytest.fixture(scope="module")
def expected():
    return np.load(FIXTURES / "expected.npz")


@pytest.mark.parametrize("version", ["v21", "v30"])
def test_lerobot_versions_value_for_value(tmp_path, expected, version):
    cameras = {"top": "observation.images.top"} | ({"wrist": "observation.images.wrist"} if version == "v30" else {})
    out = tmp_path / f"{version}.zarr"
    import_dataset(FIXTURES / version, out, build_options({**MAPPING, "cameras": cameras}), progress=False)
    assert validate_store(out) == []
    store = EpisodeStore.open(out)
    assert store.fps == 10.0 and list(store.field("domain")) == ["pick the cube", "open the drawer"]
    for episode in range(2):
        got = store.read_episode(episode)
        assert np.array_equal(got["action"], expected[f"{version}/{episode}/action"])
        assert np.array_equal(got["state"], expected[f"{version}/{episode}/state"])
        # video: the right frame at each timestamp (lossy codec: close, and far from the neighbours)
        error = np.abs(got["images/top"].astype(int) - expected[f"{version}/{episode}/top"]).mean(axis=(1, 2, 3))
        assert error.max() < 4, error
        if version == "v30":  # PNG image feature: lossless
            assert np.array_equal(got["images/wrist"], expected[f"{version}/{episode}/wrist"])


def test_mp4_shorter_than_parquet(tmp_path):
    copy = tmp_path / "v21"
    shutil.copytree(FIXTURES / "v21", copy)
    shutil.copy(copy / "videos/chunk-000/observation.images.top/episode_000000.mp4",
                copy / "videos/chunk-000/observation.images.top/episode_000001.mp4")  # 4 frames for 5 rows
    options = build_options({**MAPPING, "cameras": {"top": "observation.images.top"}})
    with pytest.raises(SourceError, match=r"episode_000001.parquet: episode 1: episode_000001.mp4 ends at 0.300 s but the parquet "
                                          r"needs frames up to 0.400 s \(4 of 5 found\); the mp4 is shorter than its parquet"):
        import_dataset(copy, tmp_path / "o.zarr", options, progress=False)


def test_missing_camera_key_names_what_exists(tmp_path):
    options = build_options({**MAPPING, "cameras": {"top": "observation.images.front"}})
    with pytest.raises(SourceError, match=r"v21: camera key 'observation.images.front' is not a per-step key .* observation.images.top"):
        import_dataset(FIXTURES / "v21", tmp_path / "o.zarr", options, progress=False)


@pytest.mark.parametrize("video", [True, False])
def test_export_round_trip(tmp_path, video):
    src = tmp_path / "s.zarr"
    make_synthetic_store(src, (SyntheticDomain("a", num_episodes=3, episode_length=6, image_size=16), SyntheticDomain("b", num_episodes=2, episode_length=4, image_size=16)))
    export_lerobot(src, tmp_path / "lr", video=video)
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_frames"] == 26 and info["total_episodes"] == 5
    back = tmp_path / "back.zarr"
    cameras = {"cam0": "observation.images.cam0"}
    mapping = {**MAPPING, "cameras": cameras, "domain": {"from": "field", "key": "remix/domain"}}
    import_dataset(tmp_path / "lr", back, build_options(mapping), progress=False)
    a, b = EpisodeStore.open(src), EpisodeStore.open(back)
    assert np.array_equal(a.episode_ends, b.episode_ends)
    assert np.array_equal(a.array("action")[:], b.array("action")[:])    # value-exact
    assert np.array_equal(a.array("state")[:], b.array("state")[:])
    assert list(a.field("task")) == list(b.field("task"))
    assert list(a.field("domain")) == list(b.field("domain")) == ["a"] * 3 + ["b"] * 2
    diff = np.abs(a.array("images/cam0")[:].astype(int) - b.array("images/cam0")[:])
    assert diff.max() == 0 if not video else diff.mean() < 8


def test_dataset_recorded_by_lerobot_itself(tmp_path):
    """v30_lerobot/ was written by lerobot 0.4.4's LeRobotDataset.create/add_frame/save_episode/finalize."""
    expected = np.load(FIXTURES / "expected_v30_lerobot.npz")
    cameras = {"top": "observation.images.top", "wrist": "observation.images.wrist"}
    out = tmp_path / "l.zarr"
    import_dataset(FIXTURES / "v30_lerobot", out, build_options({**MAPPING, "cameras": cameras}), progress=False)
    store = EpisodeStore.open(out)
    assert list(store.field("domain")) == ["stack the blocks", "wipe the table"] and store.robot == "unknown"
    for episode in range(2):
        got = store.read_episode(episode)
        assert np.array_equal(got["action"], expected[f"{episode}/action"])
        assert np.array_equal(got["state"], expected[f"{episode}/state"])
        assert np.array_equal(got["images/wrist"], expected[f"{episode}/wrist"])
        error = np.abs(got["images/top"].astype(int) - expected[f"{episode}/top"]).mean(axis=(1, 2, 3))
        assert error.max() < 6, error
