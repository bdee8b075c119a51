"""RLDS without TensorFlow, checked against a dataset TensorFlow Datasets wrote (tests/fixtures/rlds)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from remix.data.importers.common import SourceError
from remix.data.importers.options import build_options
from remix.data.importers.rlds import RLDSReader
from remix.data.importers.run import import_dataset
from remix.data.importers.tfrecord import masked_crc32c, record_offsets
from remix.data.store import EpisodeStore, validate_store

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RLDS = FIXTURES / "rlds" / "bridge_mini" / "1.0.0"
SHARD = "bridge_mini-train.tfrecord-00000-of-00001"


@pytest.fixture(scope="module")
def expected():
    return np.load(FIXTURES / "rlds" / "expected.npz")


def test_every_value_matches_what_tfds_reports(expected):
    reader = RLDSReader(RLDS)
    refs = reader.refs()
    assert [(r.split, r.index) for r in refs] == [("train", i) for i in range(5)] + [("val", 0), ("val", 1)]
    for ref in refs:
        episode = reader.read(ref)
        key = f"{ref.split}/{ref.index}"
        for name, source in [
            ("action", "steps/action"),                 # float64 stored as float32 list
            ("state", "steps/observation/state"),
            ("depth", "steps/observation/depth"),       # zlib tensor
            ("contact", "steps/observation/contact"),   # bytes tensor ending in NUL bytes
            ("is_first", "steps/is_first"),
            ("reward", "steps/reward"),
        ]:
            value, want = episode.steps[source], expected[f"{key}/{name}"]
            assert value.dtype == want.dtype and np.array_equal(value, want), (key, name)
        for camera in ("image_0", "image_1"):          # JPEG (INTEGER_ACCURATE) and PNG
            frames = episode.steps[f"steps/observation/{camera}"]
            assert np.array_equal(np.stack([frames[t] for t in range(len(frames))]), expected[f"{key}/{camera}"])
        for t in range(episode.length):                 # dynamic shapes, nested dict
            for name in ("points", "mask"):
                value, want = episode.steps[f"steps/observation/extra/{name}"][t], expected[f"{key}/{name}/{t}"]
                assert value.dtype == want.dtype and np.array_equal(value, want)
        assert list(episode.steps["steps/language_instruction"]) == list(expected[f"{key}/language_instruction"])
        assert episode.meta["episode_metadata/file_path"] == str(expected[f"{key}/file_path"])
        assert np.array_equal(episode.meta["episode_metadata/extra/points"], expected[f"{key}/meta_points"])
        assert episode.meta["episode_metadata/episode_id"] == expected[f"{key}/episode_id"]


def test_bridge_preset_scene_domains(tmp_path, expected):
    options = build_options({"image_size": [16, 20]}, preset="bridge")
    result = import_dataset(RLDS, tmp_path / "b.zarr", options, progress=False)
    assert result.added == 6 and dict(result.skipped) == {"domain '' not in map": 1}  # the scripted episode
    assert validate_store(tmp_path / "b.zarr") == []
    store = EpisodeStore.open(tmp_path / "b.zarr")
    assert store.fps == 5.0 and store.cameras == {"cam0": (16, 20)} and store.robot == "widowx"
    scenes = dict(zip(store.field("scene"), store.field("domain")))
    assert scenes == {
        "toykitchen2": "toykitchen2", "datacol2_toykitchen7": "datacol2_toykitchen7",
        "toysink1_room8052": "toysink1", "toykitchen6": "toykitchen6",
        "toysink2_bww": "datacol2_toysink2", "tabletop_dark_wood": "tabletop_dark_wood",
    }
    for i in range(store.num_episodes):
        key = f"{store.field('split')[i]}/{store.field('source_index')[i]}"
        episode = store.read_episode(i)
        assert np.array_equal(episode["action"], expected[f"{key}/action"].astype(np.float32))
        assert np.array_equal(episode["state"], expected[f"{key}/state"].astype(np.float32))
        assert store.field("task")[i] == expected[f"{key}/language_instruction"][0]


def test_require_cameras_ignores_lying_flags(tmp_path):
    options = build_options(
        {"cameras": {"cam0": "steps/observation/image_0", "cam1": "steps/observation/image_1"},
         "filters": {"require_cameras": True}, "split": "train"},
        preset="bridge",
    )
    result = import_dataset(RLDS, tmp_path / "c.zarr", options, progress=False)
    scenes = set(EpisodeStore.open(tmp_path / "c.zarr").field("scene"))
    # train episode 1 claims has_image_1 but its pictures are black; episode 3 claims none but has them
    assert result.skipped["camera cam1 blank"] == 1
    assert scenes == {"toykitchen2", "toysink1_room8052", "toykitchen6"}


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "bridge_mini" / "1.0.0"
    shutil.copytree(RLDS, target)
    return target


def test_corrupt_record_names_file_and_episode(tmp_path):
    src = _copy(tmp_path)
    shard = src / SHARD
    offsets = record_offsets(shard)
    data = bytearray(shard.read_bytes())
    data[offsets[2] + 100] ^= 0xFF
    shard.write_bytes(bytes(data))
    options = build_options(preset="bridge")
    with pytest.raises(SourceError, match=rf"{SHARD}: record 2 at byte {offsets[2]} \(episode 2 of bridge_mini/1.0.0/train\) fails its data CRC32C check; .*download it again"):
        import_dataset(src, tmp_path / "o.zarr", options, progress=False)


def test_truncated_shard(tmp_path):
    src = _copy(tmp_path)
    shard = src / SHARD
    shard.write_bytes(shard.read_bytes()[:-50])
    with pytest.raises(SourceError, match=r"record 4 at byte \d+ is truncated .*the shard is incomplete"):
        import_dataset(src, tmp_path / "o.zarr", build_options(preset="bridge"), progress=False)


def test_masked_crc_matches_the_spec():
    # TFRecord's masked CRC of an all-zero 8-byte length, as TensorFlow writes it
    import struct

    head = (src := (RLDS / SHARD).read_bytes())[:8]
    assert struct.unpack("<I", src[8:12])[0] == masked_crc32c(head)
    assert masked_crc32c(b"") == 0xA282EAD8


def test_bad_mapping_and_missing_fps(tmp_path):
    options = build_options({"cameras": {"cam0": "steps/observation/image_9"}}, preset="bridge")
    with pytest.raises(SourceError, match=r"camera key 'steps/observation/image_9' is not a per-step key .*fix the camera mapping"):
        import_dataset(RLDS, tmp_path / "o.zarr", options, progress=False)
    options = build_options({"action": "steps/action", "domain": {"from": "split"}})
    with pytest.raises(SourceError, match=r"records no frame rate \(rlds\); pass fps="):
        import_dataset(RLDS, tmp_path / "o.zarr", options, progress=False)
    assert not (tmp_path / "o.zarr").exists()


def test_nested_sequence_is_listed_and_refused_only_when_mapped(tmp_path):
    """A Sequence inside steps (TFDS writes it ragged: <key>/ragged_flat_values + ragged_row_lengths_0) must not
    block importing the other keys; mapping one of its leaves is refused before any episode is read."""
    copy = tmp_path / "bridge_mini" / "1.0.0"
    shutil.copytree(RLDS, copy)
    features = json.loads((copy / "features.json").read_text())
    observation = features["featuresDict"]["features"]["steps"]["sequence"]["feature"]["featuresDict"]["features"]["observation"]
    tensor = "tensorflow_datasets.core.features.tensor_feature.Tensor"
    observation["featuresDict"]["features"]["objects"] = {  # the layout TFDS's Sequence.to_json_content writes
        "pythonClassName": "tensorflow_datasets.core.features.sequence_feature.Sequence",
        "sequence": {"length": "-1", "feature": {
            "pythonClassName": "tensorflow_datasets.core.features.features_dict.FeaturesDict",
            "featuresDict": {"features": {
                "pos": {"pythonClassName": tensor, "tensor": {"dtype": "float32", "encoding": "none", "shape": {"dimensions": ["3"]}}},
                "name": {"pythonClassName": "tensorflow_datasets.core.features.text_feature.Text", "text": {}},
            }},
        }},
    }
    (copy / "features.json").write_text(json.dumps(features))
    reader = RLDSReader(copy)
    assert {"steps/observation/objects/pos", "steps/observation/objects/name"} <= set(reader.step_keys)
    result = import_dataset(copy, tmp_path / "ok.zarr", build_options({"image_size": [8, 8]}, preset="bridge"), progress=False)
    assert result.added == 6 and validate_store(tmp_path / "ok.zarr") == []
    options = build_options({"image_size": [8, 8], "state": ["steps/observation/state", "steps/observation/objects/pos"]},
                            preset="bridge")
    with pytest.raises(SourceError, match=r"features.json: feature 'steps/observation/objects/pos' is a Sequence nested "
                                          r"inside steps \(ragged per step\), which this importer does not decode; leave it "
                                          r"out of the mapping \(map only the keys you need\)$"):
        import_dataset(copy, tmp_path / "o.zarr", options, progress=False)
    assert not (tmp_path / "o.zarr").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from remix.data.cli import main; sys.argv[0] = 'remix-data'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_cli_import_and_one_line_errors(tmp_path):
    out = tmp_path / "cli.zarr"
    ok = run_cli("import", str(RLDS), f"out={out}", "preset=bridge", "image_size=[8,8]", "split=val")
    assert ok.returncode == 0, ok.stderr
    assert "imported 2 episodes" in ok.stdout and run_cli("validate", str(out)).returncode == 0
    unknown = run_cli("import", str(tmp_path), f"out={tmp_path / 'x.zarr'}")
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [
        f"error: {tmp_path}: cannot tell the dataset format; pass format=rlds|lerobot|robomimic|replay_buffer "
        "or point SRC at <name>/<version>/, a LeRobot root, a robomimic .hdf5 or a replay-buffer .zarr"
    ]


def test_every_preset_loads():
    from remix.data.importers.options import PRESET_DIR

    names = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    assert {"bridge", "robomimic_mh", "droid", "fractal20220817_data", "toto", "kuka"} <= set(names)
    for name in names:
        options = build_options(preset=name)
        assert options.action, name
        assert options.fps or options.format == "robomimic", name  # robomimic reads its rate from env_args
    with pytest.raises(Exception, match="no import preset 'nope'; use one of berkeley_autolab_ur5, berkeley_cable_routing, bridge"):
        build_options(preset="nope")


def test_every_rtx_mixture_member_has_a_preset_that_matches_its_catalog_schema():
    """Each of the paper's 11 RT-X members (Octo's RT_X_MIX) has a preset; every key it maps exists in the TFDS
    catalog schema with a numeric shape that adds up to the action/state width, and all share camera cam0."""
    import yaml

    catalog = yaml.safe_load((FIXTURES / "rlds" / "rtx_catalog_features.yaml").read_text())
    assert len(catalog) == 10  # + bridge, checked on the TFDS-built fixture
    for name, features in catalog.items():
        options = build_options(preset=name)
        assert options.format == "rlds" and options.fps and list(options.cameras) == ["cam0"], name
        mapped = [*options.cameras.values(), *options.action, *options.state, options.language, options.success]
        missing = [key for key in mapped if key and key not in features]
        assert not missing, f"{name}: {missing} not in the TFDS catalog schema"
        assert len(features[options.cameras["cam0"]]) == 3, name  # an image
        width = sum(int(np.prod(features[key])) for key in options.action)
        names = options.action_names or ([None] * 7 if width == 7 else None)
        assert names is not None and len(names) == width, f"{name}: {width}-d actions need action_names"
        gripper = options.gripper_dims if options.gripper_dims is not None else ([6] if width == 7 else [])
        assert all(0 <= d < width for d in gripper), name
    assert build_options(preset="kuka").success == "success"  # kuka's per-episode success flag


def test_rtx_presets_on_tfds_built_schemas(tmp_path):
    """fractal (RT-1) and DROID layouts built by TFDS (write_rtx_fixtures.py) through their presets."""
    fractal = FIXTURES / "rlds" / "fractal_mini" / "0.1.0"
    import_dataset(fractal, tmp_path / "f.zarr", build_options({"image_size": [8, 8]}, preset="fractal20220817_data"), progress=False)
    store, reader = EpisodeStore.open(tmp_path / "f.zarr"), RLDSReader(fractal)
    assert store.fps == 3.0 and set(store.field("domain")) == {"fractal20220817_data"}
    for i, ref in enumerate(reader.refs()):
        steps = reader.read(ref).steps
        action = np.concatenate([steps[f"steps/action/{k}"] for k in ("world_vector", "rotation_delta", "gripper_closedness_action")], 1)
        assert np.array_equal(store.read_episode(i)["action"], action)
        assert store.field("task")[i] == steps["steps/observation/natural_language_instruction"][0]
        assert store.read_episode(i)["state"].shape == (3, 8)
    droid = FIXTURES / "rlds" / "droid_mini" / "1.0.0"
    import_dataset(droid, tmp_path / "d.zarr", build_options({"image_size": [9, 16], "stride": 2}, preset="droid"), progress=False)
    store, reader = EpisodeStore.open(tmp_path / "d.zarr"), RLDSReader(droid)
    assert store.cameras == {"exterior_1": (9, 16), "exterior_2": (9, 16), "wrist": (9, 16)} and store.fps == 7.5  # 15 Hz, stride 2
    assert sorted(store.field("building")) == sorted(store.field("domain")) == ["ILIAD", "RAIL"]
    assert set(store.field("date")) == {"2023-05-01"}
    for i, ref in enumerate(reader.refs()):
        steps = reader.read(ref).steps
        target = np.concatenate([steps["steps/action_dict/cartesian_position"], steps["steps/action_dict/gripper_position"]], 1)
        assert np.array_equal(store.read_episode(i)["action"], target[[1, 3]].astype(np.float32))  # absolute: last of each pair
