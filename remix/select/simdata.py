"""Prior and target data from the MuJoCo tabletop sim for data-selection checks (CI and benchmark).

Graded operators drive the sim: `expert` (the scripted expert), `noisy` (the expert plus Gaussian
noise of `noise` x the step limit on every motion dimension: a poor operator) and `random` (uniform
random motions and gripper, unrelated to any task: junk). Every attempt is kept (prior data is not
filtered by success); the per-episode fields say `task`, `domain`, `operator`, `seed` and `success`,
as demo stores do. Episodes end on the task's success or after `max_steps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from remix.common.errors import ConfigError
from remix.data.store import DEFAULT_ACTION_NAMES, EpisodeStore

OPERATORS = ("expert", "noisy", "random")
STATE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")


def _action(robot: object, operator: str, rng: np.random.Generator, noise: float) -> np.ndarray:
    limits = robot.limits  # type: ignore[attr-defined]
    if operator == "random":
        action = np.zeros(7, dtype=np.float32)
        action[:3] = rng.uniform(-1, 1, 3) * limits.max_translation
        action[5] = rng.uniform(-1, 1) * limits.max_rotation
        action[6] = float(rng.random() < 0.5)
        return action
    action = np.asarray(robot.expert_action(), dtype=np.float32).copy()  # type: ignore[attr-defined]
    if operator == "noisy":
        action[:3] += rng.normal(0, noise, 3) * limits.max_translation
        action[5] += rng.normal(0, noise) * limits.max_rotation
        if rng.random() < noise / 4:
            action[6] = 1.0 - action[6]
    return action


def make_sim_store(path: str | Path, task: str, operator: str = "expert", episodes: int = 10, seed: int = 0,
                   max_steps: int = 40, noise: float = 0.5, cameras: Mapping[str, Sequence[int]] | None = None,
                   domain: str | None = None, profile: str = "widowx", control_hz: float | None = None,
                   max_translation: float | None = None) -> Path:
    """Record `episodes` attempts of `task` by one graded operator into a new store at `path` (the sim robot's
    `control_hz` and `max_translation`: None = the profile's)."""
    from robots.sim import SimRobot

    if operator not in OPERATORS:
        raise ConfigError(f"unknown sim operator {operator!r}; use one of {OPERATORS}")
    cams = dict(cameras or {})
    robot = SimRobot(profile=profile, task=task, cameras=cams, seed=seed, control_hz=control_hz,
                     max_translation=max_translation)
    store = EpisodeStore.create(path, fps=robot.control_hz, robot=robot.name, action_names=DEFAULT_ACTION_NAMES,
                                gripper_dims=(6,), cameras={k: tuple(v) for k, v in cams.items()},
                                state_names=STATE_NAMES, overwrite=True)
    rng = np.random.default_rng(seed)
    with robot:
        for i in range(episodes):
            observation = robot.reset(seed=seed + i)
            states, actions, frames = [], [], {k: [] for k in cams}
            success = False
            for _ in range(max_steps):
                states.append(observation.state)
                for k in cams:
                    frames[k].append(observation.images[k])
                actions.append(robot.send_action(_action(robot, operator, rng, noise)))
                observation = robot.get_observation()
                success = bool(robot.check_success())
                if success and operator != "random":
                    break
            arrays = {"action": np.asarray(actions, np.float32), "state": np.asarray(states, np.float32)}
            arrays.update({f"images/{k}": np.asarray(v, np.uint8) for k, v in frames.items()})
            store.add_episode(arrays, task=task, domain=domain or f"{task}-{operator}", operator=operator,
                              seed=seed + i, success=success)
    return Path(path)
