"""A writer SIGKILLed mid-episode loses only that episode; the store stays readable and appendable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import zarr

from remix.data.store import EpisodeStore

WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from pathlib import Path
    from remix.data.store import EpisodeStore
    path, marker = Path(sys.argv[1]), Path(sys.argv[2])
    store = EpisodeStore.create(path, fps=10, cameras={"cam0": (48, 48)})
    for index in range(1000):
        length = 5 if index < 3 else 3000           # the 4th episode is long: we kill it mid-write
        rng = np.random.default_rng(index)
        episode = {
            "action": rng.normal(size=(length, 7)).astype(np.float32),
            "images/cam0": rng.integers(0, 255, size=(length, 48, 48, 3), dtype=np.uint8),
        }
        marker.write_text(str(index))
        store.add_episode(episode, task=f"task{index}")
    """
)


def test_sigkill_mid_episode_keeps_every_earlier_episode(tmp_path):
    path, marker = tmp_path / "crash.zarr", tmp_path / "marker"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(marker)])
    deadline = time.time() + 60
    images = path / "data" / "images" / "cam0"
    while time.time() < deadline:  # wait until episode 3's arrays have been grown, then kill mid-write
        if marker.exists() and marker.read_text() == "3" and images.exists():
            if zarr.open_array(images, mode="r").shape[0] > 15:
                break
        time.sleep(0.005)
    time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert marker.read_text() == "3", "the writer should have been killed while writing episode 3"

    raw = zarr.open_group(path, mode="r")
    assert raw["data/images/cam0"].shape[0] > 15, "the kill should have left a partly written episode behind"

    store = EpisodeStore.open(path)
    assert store.num_episodes == 3 and store.num_steps == 15
    assert store.field("task").tolist() == ["task0", "task1", "task2"]
    for index in range(3):
        rng = np.random.default_rng(index)
        expected_action = rng.normal(size=(5, 7)).astype(np.float32)
        expected_images = rng.integers(0, 255, size=(5, 48, 48, 3), dtype=np.uint8)
        episode = store.read_episode(index)
        np.testing.assert_array_equal(episode["action"], expected_action)
        np.testing.assert_array_equal(episode["images/cam0"], expected_images)

    appender = EpisodeStore.open(path, mode="a")
    assert appender.array("images/cam0").shape[0] == 15
    appender.add_episode(
        {"action": np.ones((2, 7), np.float32), "images/cam0": np.zeros((2, 48, 48, 3), np.uint8)}, task="after"
    )
    reopened = EpisodeStore.open(path)
    assert reopened.num_episodes == 4 and reopened.field("task").tolist()[-1] == "after"
    np.testing.assert_array_equal(reopened.read_episode(3)["action"], np.ones((2, 7), np.float32))
