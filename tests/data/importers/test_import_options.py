"""Import options: stride sums delta actions, worker processes give the same store, resize modes, value maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from remix.common.errors import ConfigError
from remix.data.importers.common import SourceError, resize_image
from remix.data.importers.convert import stride_actions
from remix.data.importers.options import build_options
from remix.data.importers.run import import_dataset
from remix.data.store import EpisodeStore

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RLDS = FIXTURES / "rlds" / "bridge_mini" / "1.0.0"


def test_stride_sums_deltas_and_keeps_last_gripper():
    action = np.arange(7 * 7, dtype=np.float64).reshape(7, 7)
    strided = stride_actions(action, 3, "delta", [6])
    assert strided.shape == (3, 7)
    assert np.array_equal(strided[:, :6], np.stack([action[0:3, :6].sum(0), action[3:6, :6].sum(0), action[6:7, :6].sum(0)]))
    assert np.array_equal(strided[:, 6], action[[2, 5, 6], 6])
    assert np.array_equal(stride_actions(action, 3, "absolute", [6]), action[[2, 5, 6]])


def test_stride_import_keeps_total_motion(tmp_path):
    plain = import_dataset(RLDS, tmp_path / "a.zarr", build_options({"image_size": [8, 8]}, preset="bridge"), progress=False)
    strided = import_dataset(RLDS, tmp_path / "b.zarr", build_options({"image_size": [8, 8], "stride": 2}, preset="bridge"), progress=False)
    a, b = EpisodeStore.open(tmp_path / "a.zarr"), EpisodeStore.open(tmp_path / "b.zarr")
    assert strided.steps == sum((n + 1) // 2 for n in a.episode_lengths) and plain.added == strided.added
    assert (a.fps, b.fps) == (5.0, 2.5)  # every 2nd step of a 5 Hz source: steps 0.4 s apart
    for i in range(a.num_episodes):
        full, half = a.read_episode(i), b.read_episode(i)
        assert np.allclose(full["action"][:, :6].sum(0), half["action"][:, :6].sum(0), atol=1e-6)
        assert np.array_equal(full["state"][::2], half["state"])
        assert np.array_equal(full["images/cam0"][::2], half["images/cam0"])


def test_worker_processes_write_the_same_store(tmp_path):
    options = {"image_size": [16, 16], "domain": {"from": "split", "map": None}}
    import_dataset(RLDS, tmp_path / "one.zarr", build_options(options, preset="bridge"), progress=False)
    import_dataset(RLDS, tmp_path / "two.zarr", build_options({**options, "workers": 2}, preset="bridge"), progress=False)
    one, two = EpisodeStore.open(tmp_path / "one.zarr"), EpisodeStore.open(tmp_path / "two.zarr")
    assert np.array_equal(one.episode_ends, two.episode_ends)
    for key in one.keys:
        assert np.array_equal(one.array(key)[:], two.array(key)[:]), key
    assert list(one.field("source_index")) == list(two.field("source_index"))


@pytest.mark.parametrize("mode", ["stretch", "crop", "pad"])
def test_resize_modes(mode):
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, 10:30] = 255  # a white centre square
    out = resize_image(image, (10, 10), mode)
    assert out.shape == (10, 10, 3)
    if mode == "crop":
        assert out.min() == 255                       # only the centre is kept
    if mode == "pad":
        assert out[0].max() == 0 and out[5, 5, 0] == 255  # letterbox bars


def test_domain_map_file_and_unmapped_error(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("kitchens: [toykitchen2, toykitchen6]\nsinks: [toysink1_room8052, toysink2_bww]\n")
    rule = {"from": "file_path", "regex": r"(?:bridge_data_v2|rss|icra|bridge_data_v1/berkeley)/([^/]+)/", "map": str(mapping)}
    options = build_options({"image_size": [8, 8], "domain": {**rule, "unmapped": "skip"}}, preset="bridge")
    result = import_dataset(RLDS, tmp_path / "a.zarr", options, progress=False)
    assert sorted(EpisodeStore.open(tmp_path / "a.zarr").field("domain")) == ["kitchens", "kitchens", "sinks", "sinks"]
    assert sum(result.skipped.values()) == 3
    options = build_options({"image_size": [8, 8], "domain": {**rule, "unmapped": "error"}}, preset="bridge")
    with pytest.raises(SourceError, match=r"episode 0 of bridge_mini/1.0.0/train: domain value 'datacol2_toykitchen7' is not in .*m.yaml; add it"):
        import_dataset(RLDS, tmp_path / "b.zarr", options, progress=False)


def test_bad_options_are_one_line():
    with pytest.raises(ConfigError, match="format='tfds' is not one of auto, rlds"):
        build_options({"format": "tfds"})
    with pytest.raises(ConfigError, match=r"domain.from='path' is not one of field, file_path"):
        build_options({"domain": {"from": "path"}})
    with pytest.raises(ConfigError, match=r"unknown import options \['colour'\]"):
        build_options({"colour": 1})
