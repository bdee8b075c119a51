"""How much control-loop time demo recording costs: off-thread recorder vs writing frames in the loop.

Runs the collection loop's per-step work (observation, record, action) on the mock robot with two
256x256 cameras for a 200-step episode, three ways:
  none    no recording (the floor),
  inline  the loop itself copies every frame and appends it to a zarr array (a naive streaming writer),
  async   teleop's EpisodeRecorder: the loop only enqueues; a worker copies and writes at commit.
Prints per-step loop time (mean / p99 / max, ms) and the inline/async ratio, then the Oculus logcat
parser's throughput. Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/teleop_recording.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import zarr

from robots.mock import MockRobot
from teleop.collect import open_demo_store
from teleop.protocol import LogcatParser
from teleop.recorder import EpisodeRecorder

STEPS = 200
CAMERAS = {"cam0": (256, 256), "cam1": (256, 256)}
ACTION = np.array([0.001, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])


def run_episode(robot: MockRobot, record) -> np.ndarray:
    robot.reset()
    times = []
    for _ in range(STEPS):
        start = time.perf_counter()
        observation = robot.get_observation()
        applied = robot.send_action(ACTION)
        record(observation, applied)
        times.append(time.perf_counter() - start)
    return np.array(times) * 1e3


def summary(name: str, ms: np.ndarray) -> str:
    return f"{name:7s} mean {ms.mean():7.3f}  p99 {np.percentile(ms, 99):7.3f}  max {ms.max():7.3f} ms/step"


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}; {STEPS} steps, cameras {CAMERAS}")
    with tempfile.TemporaryDirectory() as tmp, MockRobot(control_mode="blocking", control_hz=1000.0, cameras=CAMERAS) as robot:
        floor = run_episode(robot, lambda obs, act: None)

        group = zarr.open_group(Path(tmp) / "inline.zarr", mode="w")
        arrays = {cam: group.create_array(cam, shape=(0, h, w, 3), dtype="uint8", chunks=(1, h, w, 3))
                  for cam, (h, w) in CAMERAS.items()}

        def inline(observation, applied) -> None:
            for cam, array in arrays.items():
                frame = np.array(observation.images[cam])
                array.resize((array.shape[0] + 1, *frame.shape))
                array[-1] = frame

        inline_ms = run_episode(robot, inline)

        store = open_demo_store(Path(tmp) / "async.zarr", robot)
        recorder = EpisodeRecorder(store)
        recorder.begin()
        async_ms = run_episode(robot, recorder.add_step)
        start = time.perf_counter()
        recorder.commit(task="bench").result()
        commit_s = time.perf_counter() - start
        recorder.close()

    for name, ms in (("none", floor), ("inline", inline_ms), ("async", async_ms)):
        print(summary(name, ms))
    overhead_inline = inline_ms.mean() - floor.mean()
    overhead_async = max(async_ms.mean() - floor.mean(), 1e-6)
    print(f"recording overhead per step: inline {overhead_inline:.3f} ms, async {overhead_async:.3f} ms "
          f"(inline/async loop time ratio {inline_ms.mean() / async_ms.mean():.1f}x, p99 ratio "
          f"{np.percentile(inline_ms, 99) / np.percentile(async_ms, 99):.1f}x)")
    print(f"async commit of the {STEPS}-step episode after the loop (operator decision time): {commit_s * 1e3:.0f} ms")

    line = ("11-22 01:02:03.456  4321  4390 I wE9ryARX: r:" + " ".join(["1", "0", "0", "0.1", "0", "1", "0", "0.2",
            "0", "0", "1", "0.3", "0", "0", "0", "1"]) + " &R,RG,rightJS 0.0 0.0,rightTrig 0.5,rightGrip 1.0")
    parser = LogcatParser()
    count = 20000
    start = time.perf_counter()
    for _ in range(count):
        parser.feed(line)
    per_line_us = (time.perf_counter() - start) / count * 1e6
    print(f"logcat parser: {per_line_us:.1f} us/line ({1e6 / per_line_us:,.0f} lines/s; the headset sends ~60-90/s)")


if __name__ == "__main__":
    main()
