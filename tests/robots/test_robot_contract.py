"""The Robot contract (docs/contracts.md), run against every backend that runs without hardware."""

from __future__ import annotations

import numpy as np
import pytest
from robot_backends import backend_factories

from robots.robot import ActionSpec, ControlMode, Observation, ObservationSpec, Robot

BACKENDS = backend_factories()


@pytest.fixture(params=sorted(BACKENDS))
def robot(request):
    robot: Robot = BACKENDS[request.param]()
    with robot:
        yield robot


def check_observation(robot: Robot, obs: Observation) -> None:
    assert isinstance(obs, Observation)
    assert set(obs.images) == set(robot.observation_spec.cameras)
    for name, image in obs.images.items():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert image.shape[:2] == tuple(robot.observation_spec.cameras[name])
        assert obs.timestamps[name] > 0
    assert obs.state.dtype == np.float32 and obs.state.shape == (7,)
    assert np.all(np.isfinite(obs.state)) and 0.0 <= obs.state[6] <= 1.0
    assert "state" in obs.timestamps


def test_specs_are_typed(robot: Robot) -> None:
    assert isinstance(robot.action_spec, ActionSpec) and robot.action_spec.shape == (7,)
    assert isinstance(robot.observation_spec, ObservationSpec) and robot.observation_spec.state_shape == (7,)
    assert isinstance(robot.control_mode, ControlMode) and robot.control_hz > 0
    assert robot.connected


def test_reset_returns_home_observation(robot: Robot) -> None:
    obs = robot.reset(seed=0)
    check_observation(robot, obs)
    assert obs.state[6] > 0.5, "reset opens the gripper"
    check_observation(robot, robot.get_observation())


def test_action_moves_the_end_effector_in_the_base_frame(robot: Robot) -> None:
    start = robot.reset(seed=0).state
    applied = robot.send_action(np.array([0.0, 0.02, 0.0, 0, 0, 0, 1.0]))
    assert applied.dtype == np.float32 and applied.shape == (7,)
    end = robot.get_observation().state
    assert end[1] - start[1] > 0.005, "a +y delta moves the gripper toward +y"
    assert abs(end[1] - start[1]) <= robot.action_spec.max_translation + 0.01


def test_oversized_action_is_clipped_to_step_limits(robot: Robot) -> None:
    robot.reset(seed=0)
    applied = robot.send_action(np.array([1.0, -1.0, 0.0, 0, 0, 3.0, 7.0]))
    spec = robot.action_spec
    assert np.all(applied >= spec.low - 1e-6) and np.all(applied <= spec.high + 1e-6)
    assert 0 < applied[0] <= spec.max_translation + 1e-6 and -spec.max_translation - 1e-6 <= applied[1] < 0
    assert applied[5] == pytest.approx(spec.max_rotation, abs=1e-5), "yaw is clipped to the step limit"
    assert applied[6] == 1.0


def test_target_never_leaves_the_workspace(robot: Robot) -> None:
    robot.reset(seed=0)
    for _ in range(15):
        robot.send_action(np.array([0.05, 0.05, 0.05, 0, 0, 0, 1.0]))
    state = robot.get_observation().state
    assert robot.limits.contains(state[:3], tolerance=0.01)


def test_nonfinite_action_is_rejected_and_pose_held(robot: Robot) -> None:
    before = robot.reset(seed=0).state
    for bad in (np.nan, np.inf, -np.inf):
        applied = robot.send_action(np.array([bad, 0.01, 0, 0, 0, 0, 1.0]))
        np.testing.assert_array_equal(applied[:6], 0.0)
    after = robot.get_observation().state
    np.testing.assert_allclose(after[:3], before[:3], atol=1e-3)


def test_wrong_action_shape_raises(robot: Robot) -> None:
    robot.reset(seed=0)
    with pytest.raises(ValueError, match="7 values"):
        robot.send_action(np.zeros(6))


def test_stop_holds_until_reset(robot: Robot) -> None:
    robot.reset(seed=0)
    robot.stop()
    before = robot.get_observation().state
    applied = robot.send_action(np.array([0.03, 0, 0, 0, 0, 0, 1.0]))
    np.testing.assert_array_equal(applied[:6], 0.0)
    np.testing.assert_allclose(robot.get_observation().state[:3], before[:3], atol=1e-3)
    robot.reset(seed=0)
    start = robot.get_observation().state
    robot.send_action(np.array([0.03, 0, 0, 0, 0, 0, 1.0]))
    assert robot.get_observation().state[0] > start[0] + 0.005


def test_check_success_is_bool_or_none(robot: Robot) -> None:
    robot.reset(seed=0)
    assert robot.check_success() in (True, False, None)
