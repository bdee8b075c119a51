"""Damaged real stores: every kind of damage is reported in one line by validation and refused by open.

Each case writes a real synthetic store, damages it the way a disk, a copy tool or a hand edit does,
and checks the report. Without deep validation a deleted chunk read back as zeros and passed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from remix.common.errors import StoreError
from remix.data import store as store_module
from remix.data.store import EpisodeStore, validate_store
from remix.data.synthetic import SyntheticDomain, make_synthetic_store


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("deep") / "pristine.zarr"
    make_synthetic_store(path, SyntheticDomain("a", num_episodes=3, episode_length=5, image_size=8)).close()
    return path


@pytest.fixture
def damaged(pristine, tmp_path) -> Path:
    path = tmp_path / "s.zarr"
    shutil.copytree(pristine, path)
    return path


def _zarr_json(path: Path) -> dict:
    return json.loads(path.read_text())


def _edit_attrs(path: Path, **changes) -> None:
    meta = _zarr_json(path / "zarr.json")
    for key, value in changes.items():
        if value is None:
            meta["attributes"].pop(key)
        else:
            meta["attributes"][key] = value
    (path / "zarr.json").write_text(json.dumps(meta))


def _problems(path: Path) -> list[str]:
    """The validation report, after checking that opening (what every tool does) refuses in one line."""
    problems = validate_store(path)
    assert problems and all("\n" not in p for p in problems)
    with pytest.raises(StoreError) as refused:
        EpisodeStore.open(path).read_episode(0)
    assert "\n" not in str(refused.value)
    return problems


def test_pristine_store_is_clean_and_checksummed(pristine):
    assert validate_store(pristine) == []
    codecs = zarr.open_group(pristine, mode="r")["data/images/cam0"].metadata.codecs
    assert any(type(c).__name__ == "Crc32cCodec" for c in codecs)


def test_deleted_action_chunk_is_missing_not_zeros(damaged):
    (damaged / "data/action/c/0/0").unlink()
    problems = _problems(damaged)
    assert "data/action chunk 0 is missing" in problems[0]


def test_deleted_image_chunk_is_found_by_deep_validation(damaged):
    (damaged / "data/images/cam0/c/7/0/0/0").unlink()
    assert "data/images/cam0 chunk 7 is missing" in validate_store(damaged)[0]
    assert validate_store(damaged, deep=False) == []  # the quick check skips image chunks (one file per frame)


def test_flipped_byte_fails_the_checksum(damaged):
    chunk = damaged / "data/images/cam0/c/3/0/0/0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    problems = validate_store(damaged)
    assert "data/images/cam0 chunk 3 (rows from 3) cannot be read" in problems[0]
    with pytest.raises(StoreError, match="cannot be read"):  # a training read gets one line, not a codec traceback
        EpisodeStore.open(damaged).read_episode(0)


def test_truncated_action_chunk(damaged):
    chunk = damaged / "data/action/c/0/0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    assert "data/action chunk 0 (rows from 0) cannot be read" in _problems(damaged)[0]


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"cameras": {"cam0": [16, 16]}}, "holds frames of (8, 8, 3) but the cameras attribute says [16, 16]"),
        ({"cameras": {}}, "data/images/cam0 is not declared in the cameras attribute"),
        ({"gripper_dims": [9]}, "gripper_dims [9] must be action dims in 0..6"),
        ({"fps": None}, "attribute fps is None"),
        ({"fps": "fast"}, "attribute fps is 'fast'"),
        ({"action_names": ["dx", "dy"]}, "data/action has shape (15, 7) but the store names 2 action dims"),
    ],
)
def test_inconsistent_attributes(damaged, changes, expected):
    _edit_attrs(damaged, **changes)
    assert any(expected in p for p in _problems(damaged)), validate_store(damaged)


def test_string_version_and_garbage_zarr_json(damaged, pristine, tmp_path):
    _edit_attrs(damaged, version="1")
    assert "corrupt version attribute '1'" in _problems(damaged)[0]
    for name, expected in (("data/action/zarr.json", "unreadable array metadata"), ("zarr.json", "is not a zarr store")):
        other = tmp_path / f"garbage-{name.replace('/', '-')}"
        shutil.copytree(pristine, other)
        (other / name).write_text("{not json")
        assert expected in _problems(other)[0]


def test_fractional_episode_ends(damaged):
    group = zarr.open_group(damaged, mode="r+")
    del group["meta/episode_ends"]
    group.create_array("meta/episode_ends", data=np.array([5.5, 10.0, 15.0]))
    assert "episode ends must be a 1-d integer array" in _problems(damaged)[0]


def test_one_d_actions(damaged):
    group = zarr.open_group(damaged, mode="r+")
    del group["data/action"]
    group.create_array("data/action", data=np.zeros(15, np.float32))
    assert any("data/action has shape (15,)" in p for p in _problems(damaged))


@pytest.mark.parametrize("array", ["data/action", "meta/episode_ends"])
def test_absurd_row_count_is_refused_at_once(damaged, array):
    meta = _zarr_json(damaged / array / "zarr.json")
    meta["shape"][0] = 10**15
    (damaged / array / "zarr.json").write_text(json.dumps(meta))
    assert "10" in _problems(damaged)[0] and "corrupt" in _problems(damaged)[0]


def test_store_written_before_checksums_stays_readable(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "_COMPRESSORS", (zarr.codecs.ZstdCodec(level=0),))
    path = tmp_path / "old.zarr"
    make_synthetic_store(path, SyntheticDomain("a", num_episodes=2, episode_length=4, image_size=8)).close()
    _edit_attrs(path, write_empty_chunks=None)
    monkeypatch.undo()
    assert validate_store(path) == []
    with EpisodeStore.open(path, mode="a") as store:  # appending keeps the old codecs of its arrays
        store.add_episode(store.read_episode(0), domain="a", scene="a", task="t", operator="x")
    assert EpisodeStore.open(path).num_episodes == 3 and validate_store(path) == []


def test_cli_validate_reports_a_deleted_chunk_and_info_refuses(damaged):
    (damaged / "data/state/c/0/0").unlink()
    code = "import sys; from remix.data.cli import main; sys.argv[0] = 'remix-data'; main()"
    for command in ("validate", "info"):
        result = subprocess.run([sys.executable, "-c", code, command, str(damaged)], capture_output=True, text=True,
                                timeout=120)
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ")
        assert "data/state chunk 0 is missing" in lines[0]


def test_reading_a_deleted_frame_is_an_error_not_a_black_frame(damaged):
    (damaged / "data/images/cam0/c/7/0/0/0").unlink()
    store = EpisodeStore.open(damaged)
    store.read_episode(0)  # frames 0-4 are intact
    with pytest.raises(StoreError, match="data/images/cam0 chunk 7 is missing"):
        store.read_episode(1)  # frames 5-9 hold the deleted frame 7
