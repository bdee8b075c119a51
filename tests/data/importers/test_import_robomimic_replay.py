"""robomimic HDF5 (fixture filter keys written by robomimic 0.3.0) and diffusion_policy replay buffers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

from remix.data.importers.common import SourceError
from remix.data.importers.options import build_options
from remix.data.importers.robomimic import RobomimicReader
from remix.data.importers.run import import_dataset
from remix.data.store import EpisodeStore, validate_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HDF5 = FIXTURES / "robomimic" / "square_mh_mini.hdf5"
BUFFER = FIXTURES / "replay_buffer" / "pusht_mini.zarr"


@pytest.fixture(scope="module")
def robomimic_says():
    return json.loads((FIXTURES / "robomimic" / "expected.json").read_text())


def test_filter_keys_and_rate_match_robomimic(robomimic_says):
    reader = RobomimicReader(HDF5)
    assert reader.fps == robomimic_says["env_meta"]["env_kwargs"]["control_freq"] == 20
    assert {k: sorted(v) for k, v in reader.masks.items()} == {k: sorted(v) for k, v in robomimic_says["filter_keys"].items()}
    # numeric demo order (demo_10 after demo_3), not h5py's name order
    assert [r.handle for r in reader.refs()] == ["demo_1", "demo_2", "demo_3", "demo_10", "demo_11", "demo_12"]


def test_robomimic_mh_preset_operator_domains(tmp_path, robomimic_says):
    out = tmp_path / "mh.zarr"
    import_dataset(HDF5, out, build_options(preset="robomimic_mh"), progress=False)
    assert validate_store(out) == []
    store = EpisodeStore.open(out)
    operators = robomimic_says["filter_keys"]
    for i, domain in enumerate(store.field("domain")):
        demo = f"demo_{store.field('source_index')[i]}"
        assert operators[domain] == [demo]                       # the demo is that operator's
        assert store.field("quality")[i] == domain.split("_")[0]
        assert store.field("operator")[i] == domain[-1]
    assert sorted(store.field("domain")) == sorted(k for k in operators if "_operator_" in k)
    assert store.fps == 20.0 and store.cameras == {"agentview": (12, 16), "wrist": (12, 16)}
    with h5py.File(HDF5) as f:
        for i in range(store.num_episodes):
            demo = f[f"data/demo_{store.field('source_index')[i]}"]
            episode = store.read_episode(i)
            assert np.array_equal(episode["action"], demo["actions"][()].astype(np.float32))
            state = np.concatenate([demo[f"obs/{k}"][()] for k in ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")], 1)
            assert np.array_equal(episode["state"], state.astype(np.float32))
            assert np.array_equal(episode["images/wrist"], demo["obs/robot0_eye_in_hand_image"][()])
    assert list(store.field("success")) == [True] * 5 + [False]


def test_robomimic_split_and_success_filter(tmp_path, robomimic_says):
    options = build_options({"split": "valid", "filters": {"success_only": True}}, preset="robomimic_mh")
    import_dataset(HDF5, tmp_path / "v.zarr", options, progress=False)
    store = EpisodeStore.open(tmp_path / "v.zarr")
    valid = {int(d.split("_")[1]) for d in robomimic_says["filter_keys"]["valid"]} - {12}
    assert set(store.field("source_index")) == valid and set(store.field("split")) == {"valid"}


def test_truncated_hdf5_is_one_line(tmp_path):
    bad = tmp_path / "cut.hdf5"
    bad.write_bytes(HDF5.read_bytes()[: HDF5.stat().st_size // 2])
    with pytest.raises(SourceError, match=r"cut.hdf5: cannot open as HDF5 .*download it again"):
        import_dataset(bad, tmp_path / "o.zarr", build_options(preset="robomimic_mh"), progress=False)


def test_replay_buffer_values_and_fps_required(tmp_path):
    options = {"action": "action", "state": ["state", "keypoint"], "cameras": {"cam0": "img"}}
    with pytest.raises(SourceError, match="records no frame rate .*pass fps="):
        import_dataset(BUFFER, tmp_path / "o.zarr", build_options(options), progress=False)
    import_dataset(BUFFER, tmp_path / "o.zarr", build_options({**options, "fps": 10}), progress=False)
    assert validate_store(tmp_path / "o.zarr") == []
    store, source = EpisodeStore.open(tmp_path / "o.zarr"), zarr.open_group(BUFFER, mode="r")
    assert np.array_equal(store.episode_ends, source["meta/episode_ends"][:])
    assert np.array_equal(store.array("action")[:], source["data/action"][:])
    state = np.concatenate([source["data/state"][:], source["data/keypoint"][:].reshape(-1, 18)], 1)
    assert np.array_equal(store.array("state")[:], state)
    assert np.array_equal(store.array("images/cam0")[:], source["data/img"][:])


def test_truncated_replay_buffer(tmp_path):
    copy = tmp_path / "cut.zarr"
    shutil.copytree(BUFFER, copy)
    action = zarr.open_group(copy, mode="r+")["data/action"]
    action.resize((10, 2))
    options = build_options({"fps": 10, "action": "action"})
    with pytest.raises(SourceError, match=r"cut.zarr: episode 2: data/action has 10 steps but meta/episode_ends needs 14; .*"):
        import_dataset(copy, tmp_path / "o.zarr", options, progress=False)
