"""The shared safety layer and fault recovery, exercised through the mock backend."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remix.common.errors import ConfigError, HardwareError
from remix.common.operator_input import ScriptedInput
from robots.geometry import (
    compose_rotation,
    euler_to_matrix,
    matrix_to_euler,
    matrix_to_quat_xyzw,
    quat_xyzw_to_matrix,
)
from robots.mock import MockRobot
from robots.robot import ArmFault, RobotFault
from robots.safety import (
    Pose,
    SafetyLimits,
    SpeedLimiter,
    StopKeyMonitor,
    safe_reset_waypoints,
    sanitize_action,
    step_target,
)

LIMITS = SafetyLimits((0.1, -0.15, -0.01), (0.45, 0.25, 0.25), 0.05, 0.25)
angles = st.floats(-3.0, 3.0)
pitches = st.floats(-1.5, 1.5)


@settings(max_examples=60, deadline=None)
@given(angles, pitches, angles)
def test_euler_matrix_quaternion_round_trip(roll: float, pitch: float, yaw: float) -> None:
    rotation = euler_to_matrix(np.array([roll, pitch, yaw]))
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(euler_to_matrix(matrix_to_euler(rotation)), rotation, atol=1e-7)
    np.testing.assert_allclose(quat_xyzw_to_matrix(matrix_to_quat_xyzw(rotation)), rotation, atol=1e-7)


def test_rotation_delta_is_about_world_axes() -> None:
    # gripper pointing down (pitch 90 deg); a world-yaw delta must turn about world z, not the tool axis
    down = np.array([0.0, np.pi / 2, 0.0])
    turned = compose_rotation(down, np.array([0.0, 0.0, 0.3]))
    expected = euler_to_matrix(np.array([0, 0, 0.3])) @ euler_to_matrix(down)
    np.testing.assert_allclose(euler_to_matrix(turned), expected, atol=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=7, max_size=7))
def test_sanitized_actions_are_within_limits_or_rejected(values: list[float]) -> None:
    action = np.array(values)
    out = sanitize_action(action, LIMITS)
    if not np.all(np.isfinite(action)):
        assert out is None
        return
    assert out is not None and np.linalg.norm(out[:3]) <= 0.05 + 1e-12 and np.linalg.norm(out[3:6]) <= 0.25 + 1e-12
    assert 0.0 <= out[6] <= 1.0
    target = step_target(Pose.from_state([0.3, 0, 0.1, 0, 0, 0, 1]), out, LIMITS)
    assert LIMITS.contains(target.position)


def test_bad_limits_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="workspace is empty"):
        SafetyLimits((0.5, 0, 0), (0.4, 1, 1))
    with pytest.raises(ConfigError, match="max_translation"):
        SafetyLimits((0, 0, 0), (1, 1, 1), max_translation=-1)
    with pytest.raises(ConfigError, match="outside its workspace"):
        MockRobot(home=(2.0, 0, 0.1, 0, 0, 0, 1))
    with pytest.raises(ConfigError, match="control_mode"):
        MockRobot(control_mode="fast")


def test_safe_reset_lifts_before_travelling() -> None:
    current = Pose.from_state([0.4, 0.2, 0.0, 0, 0, 0, 0.0])
    home = Pose.from_state([0.3, 0.0, 0.15, 0, 0, 0, 1.0])
    lifted, above, final = safe_reset_waypoints(current, home, LIMITS)
    assert lifted.position[:2] == current.position[:2] and lifted.position[2] == pytest.approx(0.25)
    assert lifted.gripper == 1.0 and above.position[2] == pytest.approx(0.25)
    assert final == home


def test_nan_is_logged_and_counted() -> None:
    with MockRobot() as robot:
        robot.reset()
        robot.send_action([np.nan] * 7)
        assert robot.events.rejected_nonfinite == 1
        assert any("non-finite" in m for m in robot.events.messages)
        assert robot.commands == [], "nothing reached the arm"


def test_deltas_accumulate_on_the_previous_target() -> None:
    with MockRobot(control_mode="blocking") as robot:
        robot.reset()
        for _ in range(3):
            robot.send_action([0.02, 0, 0, 0, 0, 0.1, 0.0])
        state = robot.get_observation().state
        assert state[0] == pytest.approx(0.36, abs=1e-6) and state[5] == pytest.approx(0.3, abs=1e-6)
        assert state[6] == 0.0


def test_watchdog_holds_when_the_policy_stalls() -> None:
    with MockRobot(control_mode="rate", control_hz=50.0) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        time.sleep(0.02)  # one period: fine
        assert robot.events.watchdog_trips == 0
        time.sleep(0.15)  # > 2 periods without an action
        assert robot.events.watchdog_trips == 1
        time.sleep(0.1)
        assert robot.events.watchdog_trips == 1, "trips once per stall, not every poll"
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        time.sleep(0.15)
        assert robot.events.watchdog_trips == 2


def test_blocking_mode_has_no_watchdog() -> None:
    with MockRobot(control_mode="blocking", control_hz=50.0) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        time.sleep(0.1)
        assert robot.events.watchdog_trips == 0


def test_slow_policy_fault_trips_the_watchdog() -> None:
    with MockRobot(control_mode="rate", control_hz=50.0, faults={"slow_policy": [1]}) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        robot.get_observation()  # stalls 3 periods
        assert robot.events.watchdog_trips == 1


def test_stop_key_halts_at_once() -> None:
    operator = ScriptedInput(keys=[None, "x", None, "s"])
    with MockRobot() as robot:
        robot.reset()
        with StopKeyMonitor(operator, robot.stop) as monitor:
            assert monitor.triggered.wait(2.0)
        assert robot.stopped and robot.events.stops == 1
        assert monitor.take_keys() == ["x"]
        applied = robot.send_action([0.05, 0, 0, 0, 0, 0, 1])
        np.testing.assert_array_equal(applied[:6], 0)
        robot.resume()
        assert robot.send_action([0.05, 0, 0, 0, 0, 0, 1])[0] == pytest.approx(0.05)


def test_ik_failure_skips_the_command_and_is_reported() -> None:
    with MockRobot(faults={"ik_failure": [2]}) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        applied = robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        np.testing.assert_array_equal(applied[:6], 0)
        assert robot.events.ik_failures == 1
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        assert robot.get_observation().state[0] == pytest.approx(0.32, abs=1e-6), "skipped step did not count"


def test_reflex_is_recovered_and_reported_as_robot_fault() -> None:
    with MockRobot(faults={"reflex": [2]}) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        with pytest.raises(RobotFault, match="recovered") as info:
            robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        assert info.value.kind == "arm" and robot.events.faults == 1
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])  # the arm accepts commands again
        assert robot.get_observation().state[0] == pytest.approx(0.32, abs=1e-6)


def test_camera_timeout_is_retried_then_a_robot_fault() -> None:
    with MockRobot() as robot:
        robot.reset()
        robot.inject("camera_timeout", times=1)
        assert robot.get_observation().images["cam0"].shape == (64, 64, 3)
        assert robot.events.camera_retries == 1
        robot.inject("camera_timeout", times=5)
        with pytest.raises(RobotFault, match="no fresh frame") as info:
            robot.get_observation()
        assert info.value.kind == "camera"


def test_unknown_fault_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown mock fault"):
        MockRobot(faults={"meteor": [1]})


def test_mock_image_reflects_state() -> None:
    with MockRobot() as robot:
        first = robot.reset().images["cam0"]
        robot.send_action([0, 0.05, 0, 0, 0, 0, 0.0])
        second = robot.get_observation().images["cam0"]
        assert not np.array_equal(first, second)
        with MockRobot() as twin:
            np.testing.assert_array_equal(twin.reset().images["cam0"], first), "deterministic"


def test_a_target_outside_the_box_comes_back_in_limited_steps() -> None:
    outside = Pose.from_state([0.3, 0.0, 0.45, 0, 0, 0, 1])  # 20 cm above the box top
    target = step_target(outside, np.zeros(7), LIMITS)
    assert target.position[2] == pytest.approx(0.40), "one max_translation step toward the box, no jump"
    for _ in range(10):
        target = step_target(target, np.zeros(7), LIMITS)
    assert target.position[2] == pytest.approx(0.25)


def test_a_non_finite_measured_pose_never_becomes_a_target() -> None:
    class BrokenSensor(MockRobot):
        def _read_pose(self) -> Pose:
            return Pose.from_state([np.nan] * 7) if self.broken else super()._read_pose()

    robot = BrokenSensor()
    robot.broken = True
    with pytest.raises(HardwareError, match="non-finite pose"):
        robot.connect()
    assert not robot.connected
    robot.broken = False
    with robot:
        robot.reset()
        robot.broken = True
        with pytest.raises(HardwareError, match="non-finite pose"):
            robot.reset()


def test_a_fault_during_reset_is_recovered_and_the_reset_retried() -> None:
    class FaultyReset(MockRobot):
        reset_faults = 1

        def _move_to(self, target: Pose) -> bool:
            if self.reset_faults > 0:
                self.reset_faults -= 1
                raise ArmFault("reflex during reset")
            return super()._move_to(target)

    with FaultyReset() as robot:
        obs = robot.reset()
        np.testing.assert_allclose(obs.state[:3], [0.3, 0.0, 0.15], atol=1e-6)
        assert robot.events.faults == 1
        robot.reset_faults = 2
        with pytest.raises(RobotFault, match="reset failed twice"):
            robot.reset()


def test_failed_recovery_is_a_hardware_error() -> None:
    class Unrecoverable(MockRobot):
        def _recover(self, fault: ArmFault) -> None:
            raise RuntimeError("e-stop pressed")

    with Unrecoverable(faults={"reflex": [1]}) as robot:
        robot.reset()
        with pytest.raises(HardwareError, match="could not recover.*e-stop"):
            robot.send_action([0.01, 0, 0, 0, 0, 0, 1])


def test_a_stopped_robot_is_not_watched() -> None:
    with MockRobot(control_mode="rate", control_hz=50.0) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        robot.stop()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])  # held, and does not re-arm the watchdog
        time.sleep(0.15)
        assert robot.events.watchdog_trips == 0


# ------------------------------------------------------------------ Euclidean step limit and speed per unit time
def test_a_diagonal_step_is_limited_by_its_length_not_per_axis() -> None:
    out = sanitize_action(np.array([0.05, 0.05, 0.05, 0.25, 0.25, 0.25, 1.0]), LIMITS)
    assert np.linalg.norm(out[:3]) == pytest.approx(0.05) and np.linalg.norm(out[3:6]) == pytest.approx(0.25)
    np.testing.assert_allclose(out[:3] / np.linalg.norm(out[:3]), np.ones(3) / np.sqrt(3))  # direction kept


def test_speed_limit_counts_time_not_calls() -> None:
    now = [0.0]
    limiter = SpeedLimiter(LIMITS, control_hz=10.0, clock=lambda: now[0])
    step = np.array([0.05, 0, 0, 0, 0, 0, 1.0])
    moved = sum(limiter.limit(step)[0] for _ in range(6))  # six calls at the same instant
    assert moved == pytest.approx(2 * 0.05), "a burst moves at most two steps"
    total = 0.0
    for _ in range(100):  # then a flood, 1 ms apart, for 0.1 s
        now[0] += 0.001
        total += limiter.limit(step)[0]
    assert total == pytest.approx(1.25 * 0.05 * 10 * 0.1, rel=1e-6), "sustained: 1.25 steps per control period"
    limiter.reset()
    now[0] += 0.1
    for _ in range(50):  # a loop at the nominal rate (with jitter) is never clipped
        now[0] += 0.1 + (0.02 if _ % 2 else -0.02)
        assert limiter.limit(step)[0] == pytest.approx(0.05)


def test_a_flood_of_actions_cannot_outrun_the_speed_limit_on_the_mock_arm() -> None:
    with MockRobot() as robot:  # rate mode: the wall clock
        start = np.asarray(robot.reset().state[:3], dtype=np.float64)
        started = time.monotonic()
        for _ in range(6):
            robot.send_action([0.05, 0.05, 0.0, 0, 0, 0, 1])
        elapsed = time.monotonic() - started
        moved = np.linalg.norm(np.asarray(robot.target.position) - start)
        assert moved <= 2 * 0.05 + 1.25 * 0.05 * 10 * elapsed + 1e-9, (moved, elapsed)  # was 0.29 m in 1.3 ms
