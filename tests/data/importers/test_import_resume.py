"""Resumable import: a rerun skips (source, source_index) already committed; SIGKILL loses at most one episode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zarr

from remix.data.importers.options import build_options
from remix.data.importers.run import import_dataset
from remix.data.store import EpisodeStore, validate_store

OPTIONS = {"fps": 10, "action": "action", "state": "state", "cameras": {"cam0": "img"}}


def make_buffer(path: Path, episodes: int, length: int = 6, size: int = 48) -> None:
    """A diffusion_policy-style replay buffer (zarr format 2) with noisy images (slow to compress)."""
    rng = np.random.default_rng(0)
    total = episodes * length
    root = zarr.open_group(path, mode="w", zarr_format=2)
    root.create_array("data/img", shape=(total, size, size, 3), chunks=(length, size, size, 3), dtype="uint8")[:] = rng.integers(0, 255, (total, size, size, 3), dtype=np.uint8)
    root.create_array("data/action", shape=(total, 2), dtype="float32")[:] = rng.normal(size=(total, 2))
    root.create_array("data/state", shape=(total, 3), dtype="float32")[:] = rng.normal(size=(total, 3))
    root.create_array("meta/episode_ends", shape=(episodes,), dtype="int64")[:] = np.arange(1, episodes + 1) * length


def test_rerun_skips_what_is_in(tmp_path):
    make_buffer(tmp_path / "b.zarr", 8)
    first = import_dataset(tmp_path / "b.zarr", tmp_path / "o.zarr", build_options({**OPTIONS, "max_episodes": 3}), progress=False)
    second = import_dataset(tmp_path / "b.zarr", tmp_path / "o.zarr", build_options(OPTIONS), progress=False)
    assert (first.added, second.already, second.added) == (3, 3, 5)
    store = EpisodeStore.open(tmp_path / "o.zarr")
    assert list(store.field("source_index")) == list(range(8))
    assert np.array_equal(store.array("action")[:], zarr.open_group(tmp_path / "b.zarr", mode="r")["data/action"][:])


def committed(out: Path) -> int:
    try:
        return zarr.open_group(out, mode="r")["meta/episode_ends"].shape[0]
    except Exception:  # not created yet
        return 0


def test_sigkill_mid_import_then_resume(tmp_path):
    src, out = tmp_path / "b.zarr", tmp_path / "o.zarr"
    make_buffer(src, 40)
    code = (
        "import sys; from remix.data.importers.options import build_options; from remix.data.importers.run import import_dataset; "
        f"import_dataset(sys.argv[1], sys.argv[2], build_options({OPTIONS!r}), progress=False)"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", code, str(src), str(out)], env=env)
    deadline = time.time() + 60
    while committed(out) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = committed(out)
    assert 3 <= killed_at < 40, killed_at
    result = import_dataset(src, out, build_options(OPTIONS), progress=False)
    assert result.already + result.added == 40 and result.already >= killed_at
    assert validate_store(out) == []
    store, source = EpisodeStore.open(out), zarr.open_group(src, mode="r")
    assert list(store.field("source_index")) == list(range(40))
    assert np.array_equal(store.array("action")[: store.num_steps], source["data/action"][:])
    assert np.array_equal(store.array("images/cam0")[230:240], source["data/img"][230:240])
