"""Goal images: capture (move to a goal pose and/or let the operator arrange the scene, then confirm),
save per task with metadata, and load back as an Observation for goal-conditioned policies.

On disk, one folder per task: `<root>/<task>/<camera>.png` (RGB as a normal PNG) and `goal.json`
(robot, task, state, cameras, how it was made, when). The JSON is written last, after the images, each
through a temporary file and an atomic rename, so a goal folder is either complete or ignored.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from remix.common.atomic import write_atomic
from remix.common.errors import RemixError
from remix.common.operator_input import OperatorInput
from remix.common.rate import Rate
from robots.robot import ControlMode, Observation, Robot
from robots.sim_interface import SimulatedRobot

META_NAME = "goal.json"


def task_dir(root: str | Path, task: str) -> Path:
    if not task or not re.fullmatch(r"[A-Za-z0-9_.\-]+", task) or task in (".", ".."):
        raise RemixError(f"task name {task!r} must be letters, digits, '_', '-' or '.' (it names a folder)")
    return Path(root).expanduser() / task


def move_to_pose(robot: Robot, pose: Sequence[float], tolerance_m: float = 0.005, max_steps: int = 200) -> np.ndarray:
    """Step toward an absolute pose (x, y, z, roll, pitch, yaw, gripper) through the safety layer."""
    goal = np.asarray(pose, dtype=np.float64)
    if goal.shape != (7,) or not np.all(np.isfinite(goal)):
        raise RemixError(f"goal_pose must be 7 finite numbers (x, y, z, roll, pitch, yaw, gripper), got {list(pose)}")
    if not robot.limits.contains(goal[:3]):
        raise RemixError(f"goal_pose position {goal[:3].tolist()} is outside the robot's workspace; pick one inside it")
    spec = robot.action_spec
    state = robot.get_observation().state.astype(np.float64)
    # rate mode: one action per control period, paced by the shared fixed-grid loop (blocking moves pace themselves)
    rate = Rate(robot.control_hz) if robot.control_mode is ControlMode.RATE else None
    for _ in range(max_steps):
        error = goal[:3] - state[:3]
        rotation = (goal[3:6] - state[3:6] + np.pi) % (2 * np.pi) - np.pi
        if np.linalg.norm(error) < tolerance_m and np.all(np.abs(rotation) < 0.02):
            break
        action = np.concatenate([np.clip(error, -spec.max_translation, spec.max_translation),
                                 np.clip(rotation, -spec.max_rotation, spec.max_rotation), [goal[6]]])
        robot.send_action(action)
        if rate is not None:
            rate.sleep()
        state = robot.get_observation().state.astype(np.float64)
    else:
        raise RemixError(f"could not reach goal_pose within {max_steps} steps (at {np.round(state[:3], 3).tolist()}); "
                         "check that it is reachable")
    return state


@dataclass(frozen=True)
class GoalRecord:
    task: str
    path: Path
    observation: Observation
    meta: dict[str, Any]


def save_goal(root: str | Path, task: str, observation: Observation, robot_name: str, source: str,
              overwrite: bool = False, extra: dict[str, Any] | None = None) -> GoalRecord:
    folder = task_dir(root, task)
    if (folder / META_NAME).exists() and not overwrite:
        raise RemixError(f"a goal for task {task!r} already exists in {folder}; pass overwrite=true to replace it")
    if not observation.images:
        raise RemixError(f"robot {robot_name!r} has no camera; a goal image needs one")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / META_NAME).unlink(missing_ok=True)  # the folder is incomplete until the new JSON lands
        for camera, image in observation.images.items():
            ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if not ok:
                raise RemixError(f"cannot encode the goal image of camera {camera!r}")
            write_atomic(folder / f"{camera}.png", png.tobytes())
        meta = {"task": task, "robot": robot_name, "source": source, "created": time.time(),
                "state": [float(v) for v in observation.state],
                "cameras": {c: list(img.shape[:2]) for c, img in observation.images.items()}, **(extra or {})}
        write_atomic(folder / META_NAME, json.dumps(meta, indent=2).encode())
    except OSError as error:
        raise RemixError(f"cannot write the goal to {folder} ({error.strerror}); check the path and permissions") from None
    return GoalRecord(task, folder, observation, meta)


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path).expanduser()
    if not path.is_file():
        raise RemixError(f"goal image {path} does not exist; fix the path")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RemixError(f"goal image {path} is not a readable image; pass a PNG or JPEG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_goal(path: str | Path, cameras: dict[str, tuple[int, int]] | None = None) -> Observation:
    """A goal folder (with goal.json) or a single image file -> Observation, resized to `cameras` if given.

    A single image becomes the goal of the first camera in `cameras` (or "cam0")."""
    path = Path(path).expanduser()
    if path.is_dir():
        meta_path = path / META_NAME
        if not meta_path.is_file():
            raise RemixError(f"{path} is not a complete goal folder (no {META_NAME}); capture it again with remix-goal")
        try:
            meta = json.loads(meta_path.read_text())
            names = list(meta["cameras"])
            state = np.asarray(meta["state"], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as error:
            raise RemixError(f"{meta_path} is corrupt ({error}); capture the goal again with remix-goal") from None
        images = {name: read_image(path / f"{name}.png") for name in names}
    else:
        name = next(iter(cameras), "cam0") if cameras else "cam0"
        images, state = {name: read_image(path)}, np.full(7, np.nan, dtype=np.float32)
    if cameras is not None:
        missing = sorted(set(cameras) - set(images))
        if missing:
            raise RemixError(f"goal {path} has no image for camera(s) {missing}; capture it with this robot's cameras")
        images = {c: _fit(images[c], cameras[c]) for c in cameras}
    return Observation(images=images, state=state, timestamps={c: 0.0 for c in images})


def _fit(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if tuple(image.shape[:2]) == tuple(shape):
        return image
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def capture_goal(robot: Robot, task: str, operator: OperatorInput, goal_pose: Sequence[float] | None = None,
                 use_expert: bool = False, max_expert_steps: int = 300, seed: int | None = None) -> tuple[Observation, str]:
    """Reset, then reach the goal scene (expert on a simulator, goal pose and/or operator), confirm, capture."""
    while True:
        robot.reset(seed=seed)
        if use_expert:
            if not isinstance(robot, SimulatedRobot):
                raise RemixError(f"robot {robot.name!r} has no scripted expert; use expert=false and arrange the scene")
            for _ in range(max_expert_steps):
                if robot.check_success():
                    break
                robot.send_action(robot.expert_action())
            if not robot.check_success():
                raise RemixError(f"the scripted expert did not solve {task!r} in {max_expert_steps} steps")
            return robot.get_observation(), "expert"
        source = "operator"
        if goal_pose is not None:
            move_to_pose(robot, goal_pose)
            source = "goal_pose+operator"
        operator.ask(f"task {task!r}: arrange the goal scene, then press Enter to capture the goal image", default="")
        observation = robot.get_observation()
        answer = operator.ask("keep this goal image? (n: arrange again)", choices=["y", "n"], default="y")
        if answer == "y":
            return observation, source
        operator.say("capturing again")
