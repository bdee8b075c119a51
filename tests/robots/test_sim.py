"""MuJoCo sim: scripted experts solve every task on both profiles; success predicates are not trivially true."""

from __future__ import annotations

import numpy as np
import pytest

from remix.common.errors import ConfigError
from robots.robot import ControlMode
from robots.sim import SimRobot
from robots.sim_scene import TASKS


def run_expert(robot: SimRobot, max_steps: int = 60) -> int | None:
    for step in range(max_steps):
        robot.send_action(robot.expert_action())
        if robot.check_success():
            return step + 1
    return None


@pytest.mark.parametrize("profile", ["widowx", "franka"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_scripted_expert_solves_the_task(profile: str, task: str) -> None:
    with SimRobot(profile=profile, task=task, cameras={}) as robot:
        for seed in (0, 1, 2):
            robot.reset(seed=seed)
            assert not robot.check_success(), "a fresh scene is not already solved"
            assert run_expert(robot) is not None, f"expert failed {task} on {profile} (seed {seed})"


def test_doing_nothing_does_not_succeed() -> None:
    with SimRobot(task="put_red_in_green", cameras={}) as robot:
        robot.reset(seed=3)
        for _ in range(10):
            robot.send_action(np.array([0, 0, 0, 0, 0, 0, 1.0]))
        assert not robot.check_success()


def test_lowering_the_cube_outside_the_region_is_not_success() -> None:
    with SimRobot(task="put_red_in_green", cameras={}) as robot:
        robot.reset(seed=0)
        cube_before = robot.object_position("red")
        assert run_expert(robot) is not None
        assert np.linalg.norm(robot.object_position("red")[:2] - cube_before[:2]) > 0.05, "the cube was carried"


def test_resets_are_randomized_and_reproducible() -> None:
    with SimRobot(cameras={}) as robot:
        robot.reset(seed=5)
        first = robot.object_position("red")
        robot.reset(seed=6)
        assert np.linalg.norm(robot.object_position("red") - first) > 1e-3
        robot.reset(seed=5)
        np.testing.assert_allclose(robot.object_position("red"), first, atol=1e-9)


def test_profiles_set_mode_rate_and_limits() -> None:
    widowx, franka = SimRobot(profile="widowx"), SimRobot(profile="franka")
    assert widowx.control_mode is ControlMode.BLOCKING and widowx.control_hz == 5.0
    assert franka.control_mode is ControlMode.RATE and franka.control_hz == 10.0
    assert widowx.limits.workspace_high == (0.45, 0.25, 0.25)


def test_rendered_image_shows_the_scene_changing() -> None:
    with SimRobot(task="lift_red", cameras={"cam0": (48, 48)}) as robot:
        first = robot.reset(seed=0).images["cam0"]
        assert first.std() > 5, "not a blank frame"
        run_expert(robot)
        assert np.abs(robot.get_observation().images["cam0"].astype(int) - first).mean() > 0.5


def test_bad_sim_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown sim profile"):
        SimRobot(profile="ur5")
    with pytest.raises(ConfigError, match="unknown sim task"):
        SimRobot(task="juggle")
    with pytest.raises(ConfigError, match="no camera"):
        SimRobot(cameras={"wrist": (32, 32)})


def test_small_steps_at_10_hz_limit_each_move_and_the_expert_still_solves_the_task() -> None:
    with SimRobot(task="put_red_in_green", cameras={}, control_hz=10.0, max_translation=0.02) as robot:
        assert robot.limits.max_translation == 0.02 and robot.control_hz == 10.0
        robot.reset(seed=4)
        applied = robot.send_action(np.array([0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]))
        assert applied[0] == pytest.approx(0.02)
        steps = run_expert(robot, max_steps=120)
        assert steps is not None and steps > 15, "small steps take more of them than the 5 Hz profile's"
