"""Scripted-expert demonstrations on the simulated robot, with noise-injected execution (DART).

An expert that never errs shows only the states on its own path; a policy that drifts a few
millimetres off that path has never seen what to do there, and its errors compound. DART (Laskey et
al., 2017) fixes that cheaply: the robot *executes* the expert's action plus Gaussian noise, while the
episode *records* the expert's clean action for the state it was in. The next step's expert action
then corrects the perturbation, so the data holds recoveries, labelled with what the expert does.

Each kept episode ends with the success frame and a hold action (zero motion, gripper as it is), so the
episode's last frame, the goal image training pairs it with, shows the task done, and the policy
learns to stay still there. Episodes the expert fails within `max_steps` are dropped (and counted).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remix.common.errors import ConfigError
from remix.data import EpisodeStore
from robots.sim import SimRobot
from teleop.sim_expert import dart_action


@dataclass(frozen=True)
class DemoReport:
    """What a collection run produced: kept episodes, expert failures, their seeds and lengths."""

    kept: int
    failed: int
    lengths: tuple[int, ...]
    failed_seeds: tuple[int, ...]


def run_expert_episode(robot: SimRobot, seed: int, max_steps: int, noise: float = 0.0,
                       rng: np.random.Generator | None = None) -> dict[str, np.ndarray] | None:
    """One episode on scene `seed`; returns its arrays (clean expert labels) or None if the expert failed."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    observation = robot.reset(seed=seed)
    images: dict[str, list[np.ndarray]] = {camera: [] for camera in observation.images}
    states, actions = [], []

    def record(obs, action: np.ndarray) -> None:
        for camera, frame in obs.images.items():
            images[camera].append(np.asarray(frame, dtype=np.uint8))
        states.append(np.asarray(obs.state, dtype=np.float32))
        actions.append(np.asarray(action, dtype=np.float32))

    for _ in range(max_steps):
        label = np.asarray(robot.expert_action(), dtype=np.float64)
        record(observation, label)
        robot.send_action(dart_action(label, noise, robot.limits.max_translation, rng))
        observation = robot.get_observation()
        if robot.check_success():
            hold = np.zeros_like(label)
            hold[6] = robot.target.gripper
            record(observation, hold)
            arrays = {"action": np.stack(actions), "state": np.stack(states),
                      "timestamp": np.arange(len(actions), dtype=np.float64) / robot.control_hz}
            arrays.update({f"images/{camera}": np.stack(frames) for camera, frames in images.items()})
            return arrays
    return None


def record_expert_demos(robot: SimRobot, store_path: str | Path, seeds: Iterable[int], episodes: int,
                        max_steps: int, noise: float = 0.0, overwrite: bool = False) -> DemoReport:
    """Write `episodes` successful expert demos (DART noise `noise`) to a new store, drawing scene seeds
    from `seeds` until enough succeed; every episode gets fields `task`, `seed` and `operator`."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    store = EpisodeStore.create(store_path, fps=robot.control_hz, robot=robot.name,
                                cameras=dict(robot.observation_spec.cameras),
                                state_names=robot.observation_spec.state_names, overwrite=overwrite)
    lengths, failed = [], []
    started = time.monotonic()
    for seed in seeds:
        arrays = run_expert_episode(robot, int(seed), max_steps, noise, np.random.default_rng([int(seed), 0xDA27]))
        if arrays is None:
            failed.append(int(seed))
            continue
        store.add_episode(arrays, task=robot.task.name, seed=int(seed), operator=f"expert(dart={noise:g})")
        lengths.append(len(arrays["action"]))
        if len(lengths) == episodes:
            break
    else:
        raise ConfigError(f"the seeds ran out after {len(lengths)} of {episodes} demos ({len(failed)} expert "
                          f"failures in {time.monotonic() - started:.0f} s); give more seeds or lower the noise")
    return DemoReport(len(lengths), len(failed), tuple(lengths), tuple(failed))
