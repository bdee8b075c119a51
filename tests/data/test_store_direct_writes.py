"""The store's direct image-chunk writes (`_write_frames`) produce the very files zarr's own pipeline writes."""

from __future__ import annotations

import numpy as np
import pytest

from remix.data.store import EpisodeStore, validate_store


def _episodes() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 255, 12 * 16 * 3).reshape(12, 16, 3).astype(np.uint8)  # compressible, like a picture
    return [
        {"action": rng.normal(size=(n, 7)).astype(np.float32),
         "images/cam0": np.stack([np.roll(smooth, t, 1) for t in range(n)]),
         "images/cam1": rng.integers(0, 255, size=(n, 8, 8, 3), dtype=np.uint8)}
        for n in (3, 1, 5)
    ] + [{"action": np.zeros((2, 7), np.float32), "images/cam0": np.zeros((2, 12, 16, 3), np.uint8),  # all-fill chunks
          "images/cam1": np.zeros((2, 8, 8, 3), np.uint8)}]


def _write(path, direct: bool, monkeypatch: pytest.MonkeyPatch) -> EpisodeStore:
    monkeypatch.setattr(EpisodeStore, "direct_image_writes", direct)
    with EpisodeStore.create(path, fps=10, cameras={"cam0": (12, 16), "cam1": (8, 8)}) as store:
        for index, episode in enumerate(_episodes()):
            store.add_episode(episode, task=f"t{index}")
    return EpisodeStore.open(path)


def test_direct_chunk_files_equal_zarrs_byte_for_byte(tmp_path, monkeypatch):
    import remix.data.store as store_module

    calls: list[bool] = []
    original = store_module._write_frames
    monkeypatch.setattr(store_module, "_write_frames", lambda *a: calls.append(original(*a)) or calls[-1])
    direct = _write(tmp_path / "direct.zarr", True, monkeypatch)
    assert calls.count(True) == 8 and calls.count(False) == 4  # both cameras of every episode; actions via zarr
    reference = _write(tmp_path / "zarr.zarr", False, monkeypatch)
    assert len(calls) == 12  # the reference store never took the direct path
    for camera in ("cam0", "cam1"):
        ours = sorted(p.relative_to(tmp_path / "direct.zarr") for p in (tmp_path / "direct.zarr/data/images" / camera / "c").rglob("*") if p.is_file())
        theirs = sorted(p.relative_to(tmp_path / "zarr.zarr") for p in (tmp_path / "zarr.zarr/data/images" / camera / "c").rglob("*") if p.is_file())
        assert ours == theirs and len(ours) == 11  # every frame, the all-zero ones too (write_empty_chunks)
        for name in ours:
            assert (tmp_path / "direct.zarr" / name).read_bytes() == (tmp_path / "zarr.zarr" / name).read_bytes(), name
    for index, episode in enumerate(_episodes()):
        got = direct.read_episode(index)
        for key, value in episode.items():
            np.testing.assert_array_equal(got[key], value)
            np.testing.assert_array_equal(reference.read_episode(index)[key], value)
    assert validate_store(tmp_path / "direct.zarr", deep=True) == []


def test_sharded_images_go_through_zarr(tmp_path):
    with EpisodeStore.create(tmp_path / "s.zarr", fps=10, cameras={"cam0": (12, 16)}, shard_frames=4) as store:
        for episode in _episodes():
            store.add_episode({"action": episode["action"], "images/cam0": episode["images/cam0"]})
    store = EpisodeStore.open(tmp_path / "s.zarr")
    np.testing.assert_array_equal(store.read_episode(2)["images/cam0"], _episodes()[2]["images/cam0"])
    assert validate_store(tmp_path / "s.zarr", deep=True) == []
