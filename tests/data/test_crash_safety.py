"""A writer SIGKILLed mid-episode loses only that episode; the store stays readable and appendable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import zarr

from remix.common.errors import StoreError
from remix.data.store import LOCK_NAME, EpisodeStore, validate_store

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


# ------------------------------------------------------------------ a kill at every write point (deterministic)
def _kill_episode(index: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + index)
    return {"action": rng.normal(size=(1, 7)).astype(np.float32),
            "images/cam0": rng.integers(0, 255, size=(1, 4, 4, 3), dtype=np.uint8)}


def _writer_session(path, marker) -> None:
    """What remix-collect does: create, add episodes, close; a rerun appends one more."""
    store = EpisodeStore.create(path, fps=10, cameras={"cam0": (4, 4)})
    for index in range(2):
        store.add_episode(_kill_episode(index), task=f"t{index}", **({"success": True} if index == 1 else {}))
        marker.write_text(str(index + 1))
    store.close()
    with EpisodeStore.open(path, mode="a") as store:
        store.add_episode(_kill_episode(2), task="t2")
        marker.write_text("3")


def _run_killed_at(point: int, path, marker) -> bool:
    """Fork a writer that dies (os._exit, no cleanup) just before its `point`-th file write or delete;
    False when the writer finished before reaching that point."""
    pid = os.fork()
    if pid == 0:  # child: count every file write/delete zarr makes, and the rename that publishes the store
        import zarr.storage._local as local

        count = [0]

        def tick():
            count[0] += 1
            if count[0] == point:
                os._exit(77)

        put, delete, rename = local._put, local.LocalStore.delete, os.rename

        def counted_put(*args, **kwargs):
            tick()
            return put(*args, **kwargs)

        async def counted_delete(self, key):
            tick()
            return await delete(self, key)

        def counted_rename(*args, **kwargs):
            tick()
            return rename(*args, **kwargs)

        local._put, local.LocalStore.delete, os.rename = counted_put, counted_delete, counted_rename
        try:
            _writer_session(path, marker)
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 77), f"writer failed at write point {point} with exit code {code}"
    return code == 77


@pytest.mark.slow
def test_a_kill_at_every_write_point_leaves_every_committed_episode_readable(tmp_path):
    points = 0
    for point in range(1, 400):
        path, marker = tmp_path / f"k{point}.zarr", tmp_path / f"k{point}.marker"
        if not _run_killed_at(point, path, marker):
            break
        points += 1
        done = int(marker.read_text()) if marker.exists() else 0
        if not path.exists():  # killed before the store was published: nothing was committed
            assert done == 0
            EpisodeStore.create(path, fps=10, cameras={"cam0": (4, 4)}).close()
        store = EpisodeStore.open(path)  # must open, whatever the kill point
        assert store.num_episodes in (done, done + 1), (point, done, store.num_episodes)
        for index in range(store.num_episodes):
            expected = _kill_episode(index)
            episode = store.read_episode(index)
            np.testing.assert_array_equal(episode["action"], expected["action"])
            np.testing.assert_array_equal(episode["images/cam0"], expected["images/cam0"])
        if store.num_episodes:
            assert store.field("task").tolist() == [f"t{i}" for i in range(store.num_episodes)]
        with EpisodeStore.open(path, mode="a") as appender:  # the rerun continues where the kill left off
            appender.add_episode(_kill_episode(9), task="after")
        assert not validate_store(path, deep=True), (point, validate_store(path))
        reopened = EpisodeStore.open(path, check_values=False)
        assert reopened.num_episodes == store.num_episodes + 1
        np.testing.assert_array_equal(reopened.read_episode(-1)["action"], _kill_episode(9)["action"])
    print(f"{points} write points")
    assert points > 30, f"only {points} write points were exercised"


# ------------------------------------------------------------------ one writer at a time
HOLDER = textwrap.dedent(
    """
    import sys, time
    from remix.data.store import EpisodeStore
    store = EpisodeStore.open(sys.argv[1], mode="a")
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_second_writer_gets_one_line_error_naming_the_holder_and_a_dead_holder_is_taken_over(tmp_path):
    path = tmp_path / "demos.zarr"
    with EpisodeStore.create(path, fps=10, cameras={"cam0": (4, 4)}) as store:
        store.add_episode(_kill_episode(0), task="t0")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        try:
            EpisodeStore.open(path, mode="a")
            raise AssertionError("a second writer must be refused")
        except StoreError as error:
            message = str(error)
        assert f"is being written by pid {holder.pid} on " in message and "\n" not in message
        assert EpisodeStore.open(path).num_episodes == 1  # readers are never blocked
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert f"pid {holder.pid}" in (path / LOCK_NAME).read_text()  # the dead holder's note is still there
    with EpisodeStore.open(path, mode="a") as store:  # ... and its lock is taken over
        store.add_episode(_kill_episode(1), task="t1")
    assert EpisodeStore.open(path).num_episodes == 2


def test_same_process_second_writer_and_create_over_a_locked_store_are_refused(tmp_path):
    path = tmp_path / "demos.zarr"
    store = EpisodeStore.create(path, fps=10)
    for attempt in (lambda: EpisodeStore.open(path, mode="a"),
                    lambda: EpisodeStore.create(path, fps=10, overwrite=True)):
        try:
            attempt()
            raise AssertionError("must be refused while another writer holds the store")
        except StoreError as error:
            assert f"pid {os.getpid()}" in str(error)
    assert path.exists() and store.num_episodes == 0
    store.close()
    EpisodeStore.open(path, mode="a").close()


CONCURRENT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from remix.common.errors import StoreError
    from remix.data.store import EpisodeStore
    path, name, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    time.sleep(max(0.0, start - time.time()))
    try:   # what remix-collect does: create when missing, else append
        store = EpisodeStore.create(path, fps=10) if not __import__("os").path.exists(path) else EpisodeStore.open(path, mode="a")
    except StoreError as error:
        print("refused:", error, flush=True)
        sys.exit(1)
    for index in range(4):
        store.add_episode({"action": np.full((50, 7), index, np.float32)}, task=name)
    print("kept 4", flush=True)
    """
)


def test_two_writers_started_at_once_one_writes_and_the_other_is_refused(tmp_path):
    path = tmp_path / "demos.zarr"
    start = time.time() + 3.0  # both interpreters are up by then and start the same instant
    writers = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(path), name, str(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    outputs = [(w.wait(timeout=60), w.stdout.read(), w.stderr.read()) for w in writers]
    assert all(not err for _, _, err in outputs), outputs  # no traceback
    kept = [name for name, (code, out, _) in zip("ab", outputs) if code == 0]
    refused = [out for code, out, _ in outputs if code != 0]
    store = EpisodeStore.open(path)
    # either one writer was refused (one line naming the holder), or the second started after the first finished
    assert store.num_episodes == 4 * len(kept) and sorted(set(store.field("task"))) == sorted(kept)
    for out in refused:
        assert out.startswith("refused:") and "pid " in out and out.count("\n") == 1
    for index in range(store.num_episodes):
        action = store.read_episode(index)["action"]
        assert (action == action[0, 0]).all()  # no episode mixes frames of both writers
