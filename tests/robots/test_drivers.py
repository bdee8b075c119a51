"""WidowX, Franka + Robotiq and RealSense drivers against faithful fakes of their SDKs."""

from __future__ import annotations

import inspect
import sys
import time

import numpy as np
import pytest
from sdk_fakes import DOWN, FakeFrankaArm, FakeRealSense, FakeRobotiqGripper, install_interbotix

from remix.errors import HardwareError
from robots.cameras import CameraTimeout, OpenCVCamera
from robots.geometry import euler_to_matrix, quat_xyzw_to_matrix
from robots.realsense import RealSenseCamera
from robots.robot import RobotFault

franky = pytest.importorskip("franky")


# ------------------------------------------------------------------------------------------------ WidowX
def widowx():
    from robots.widowx import WidowXRobot

    return WidowXRobot(control_hz=50.0, moving_time_s=0.01, reset_moving_time_s=0.01)


def test_widowx_without_interbotix_names_what_to_install(monkeypatch) -> None:
    for name in ("interbotix_xs_modules", "interbotix_xs_modules.arm", "interbotix_xs_modules.xs_robot.arm"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(HardwareError, match="Interbotix.*remix-robot-server"):
        widowx().connect()


@pytest.mark.parametrize("ros2", [False, True], ids=["ros1", "ros2"])
def test_widowx_reset_and_blocking_steps(monkeypatch, ros2: bool) -> None:
    registry = install_interbotix(monkeypatch, ros2)
    with widowx() as robot:
        bot = registry["bots"][0]
        assert robot._ros_version == ("ros2" if ros2 else "ros1")
        assert registry["startups"] == (1 if ros2 else 0)
        obs = robot.reset()
        assert bot.gripper.calls[0] == ("release" if ros2 else "open")
        assert any(call.get("joints", [None])[:2] == [-0.1319, -0.7624] for call in bot.arm.calls), "neutral joints"
        np.testing.assert_allclose(obs.state, [0.3, 0, 0.15, 0, 0, 0, 1], atol=1e-6)
        robot.send_action([0.02, 0, 0, 0, 0, 0.1, 0.0])
        call = bot.arm.calls[-1]
        assert call["blocking"] is True and call["moving_time"] == 0.01 and call["custom_guess"] is not None
        np.testing.assert_allclose(call["T"][:3, 3], [0.32, 0, 0.15], atol=1e-9)
        np.testing.assert_allclose(call["T"][:3, :3], euler_to_matrix(np.array([0, 0, 0.1])) @ DOWN, atol=1e-9)
        assert bot.gripper.calls[-1] == ("grasp" if ros2 else "close")
        robot.send_action([0.0, 0, 0, 0, 0, 0, 0.2])
        assert bot.gripper.calls.count("grasp" if ros2 else "close") == 1, "gripper commands only on change"
        assert robot.get_observation().state[6] == pytest.approx(0.0)
    assert registry["shutdowns"] == (1 if ros2 else 0)


def test_widowx_deltas_accumulate_on_the_target_not_the_measurement(monkeypatch) -> None:
    registry = install_interbotix(monkeypatch, ros2=True)
    with widowx() as robot:
        robot.reset()
        arm = registry["bots"][0].arm
        arm.stalled = True  # one command that the arm does not follow
        robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        arm.stalled = False
        robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        np.testing.assert_allclose(arm.calls[-1]["T"][:3, 3], [0.34, 0, 0.15], atol=1e-9)


def test_widowx_ik_failure_skips_and_reports(monkeypatch) -> None:
    registry = install_interbotix(monkeypatch, ros2=False)
    with widowx() as robot:
        robot.reset()
        registry["bots"][0].arm.ik_fail_next = 1
        applied = robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        np.testing.assert_array_equal(applied[:6], 0)
        assert robot.events.ik_failures == 1
        robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        assert robot.get_observation().state[0] == pytest.approx(0.32)


def test_widowx_motor_stall_reboots_and_is_a_robot_fault(monkeypatch) -> None:
    registry = install_interbotix(monkeypatch, ros2=True)
    with widowx() as robot:
        robot.reset()
        bot = registry["bots"][0]
        bot.arm.stalled = True
        with pytest.raises(RobotFault, match="overloaded"):
            for _ in range(10):
                robot.send_action([0.05, 0, 0, 0, 0, 0, 1])
        assert ("group", "arm", True, True) in bot.core.reboots and robot.reboots == 1
        assert {"capture": True} in bot.arm.calls, "joint commands re-synced to the encoders"
        bot.arm.stalled = False
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])  # resynced to where the arm really is
        assert bot.arm.calls[-1]["T"][0, 3] == pytest.approx(robot.get_observation().state[0])


def test_widowx_targets_stay_in_the_workspace(monkeypatch) -> None:
    registry = install_interbotix(monkeypatch, ros2=True)
    with widowx() as robot:
        robot.reset()
        for _ in range(12):
            robot.send_action([0.05, -0.05, -0.05, 0, 0, 0, 1])
        positions = np.array([c["T"][:3, 3] for c in registry["bots"][0].arm.calls if "T" in c])
        assert robot.limits.contains(positions.min(0)) and robot.limits.contains(positions.max(0))


# ------------------------------------------------------------------------------------------------ Franka
def franka(**kwargs):
    from robots.franka import FrankaRobot

    defaults = dict(control_hz=50.0, gripper={"com_port": "/dev/ttyUSB9", "poll_s": 0.005}, load={"mass": 0.9, "center_of_mass": [0, 0, 0.06]},
                    robot_factory=FakeFrankaArm, gripper_factory=FakeRobotiqGripper)
    defaults.update(kwargs)
    return FrankaRobot(**defaults)


def test_fakes_match_the_real_pyrobotiqgripper_signatures() -> None:
    from pyrobotiqgripper import RobotiqGripper

    for method in ("__init__", "move", "position", "activate", "disconnect"):
        real = list(inspect.signature(getattr(RobotiqGripper, method)).parameters)
        fake = list(inspect.signature(getattr(FakeRobotiqGripper, method)).parameters)
        assert [p for p in fake if p != "kwargs"] == [p for p in real if p != "kwargs"], method


def test_franka_without_franky_names_the_build(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "franky", None)
    with pytest.raises(HardwareError, match="franky-control.*libfranka"):
        franka(robot_factory=None).connect()


def test_franka_version_mismatch_is_explained() -> None:
    def incompatible(*args, **kwargs):
        raise franky.IncompatibleVersionException("server version 5, library 10")

    with pytest.raises(HardwareError, match="server version"):
        franka(robot_factory=incompatible).connect()


def test_franka_connect_configures_the_arm() -> None:
    ee = [1, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0.1034, 1]
    with franka(ee_transform=ee) as robot:
        assert robot.arm.ee == ee
        arm = robot.arm
        assert arm.realtime_config == franky.RealtimeConfig.Enforce
        assert isinstance(arm.relative_dynamics_factor, franky.RelativeDynamicsFactor)
        assert arm.relative_dynamics_factor.velocity == pytest.approx(0.5)
        assert arm.recover_calls == 1 and arm.loads and arm.loads[0][0] == 0.9
        assert robot.gripper._gripper.activated


def test_franka_rate_steps_send_async_absolute_motions_from_the_commanded_target() -> None:
    with franka() as robot:
        robot.reset()
        arm = robot.arm
        assert all(not asynchronous for _, asynchronous in arm.moves), "reset moves are blocking"
        durations = []
        for _ in range(5):
            started = time.perf_counter()
            robot.send_action([0.01, 0.0, -0.01, 0, 0, 0.05, 0.0])
            durations.append(time.perf_counter() - started)
        assert max(durations) < 0.01, "a tick never waits for the arm or the 16 ms Modbus gripper"
        motion, asynchronous = arm.moves[-1]
        assert asynchronous and isinstance(motion, franky.CartesianMotion)
        assert motion.reference_type == franky.ReferenceType.Absolute
        pose = motion.target.pose.end_effector_pose
        np.testing.assert_allclose(pose.translation, [0.55, 0.0, 0.25], atol=1e-9)
        expected = euler_to_matrix(np.array([0, 0, 0.25])) @ np.diag([1.0, -1.0, -1.0])
        np.testing.assert_allclose(quat_xyzw_to_matrix(pose.quaternion), expected, atol=1e-9)
        deadline = time.time() + 2.0
        while robot.gripper.opening > 1e-6 and time.time() < deadline:
            time.sleep(0.01)
        assert robot.gripper._gripper.moves[-1] == (255, 255, 150, False), "closed, wait=False, on its thread"
        assert robot.get_observation().state[6] == pytest.approx(0.0, abs=1e-6)


def test_franka_reflex_is_recovered_and_reported() -> None:
    with franka() as robot:
        robot.reset()
        robot.arm.reflex_next_move = True
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])  # the fault happens in the control thread ...
        with pytest.raises(RobotFault, match="joint_acceleration_discontinuity"):
            robot.send_action([0.01, 0, 0, 0, 0, 0, 1])  # ... and surfaces at the next tick
        assert robot.arm.recover_calls == 2 and not robot.arm.has_errors
        measured = robot.get_observation().state
        np.testing.assert_allclose(robot.target.position, measured[:3], atol=1e-6), "target re-read from the arm"
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        assert robot.arm.moves[-1][1] is True


def test_franka_gripper_modbus_error_is_reported_not_lost() -> None:
    with franka() as robot:
        robot.reset()
        robot.gripper._gripper.fail_next = 1
        with pytest.raises(RobotFault, match="Modbus"):
            for _ in range(50):
                robot.send_action([0, 0, 0, 0, 0, 0, 1])
                time.sleep(0.01)


def test_franka_watchdog_stops_the_arm() -> None:
    with franka(control_hz=50.0) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        stops = robot.arm.stops
        time.sleep(0.15)
        assert robot.events.watchdog_trips == 1 and robot.arm.stops == stops + 1


# --------------------------------------------------------------------------------------------- RealSense
def test_realsense_unknown_serial_lists_connected_ones() -> None:
    rs = FakeRealSense(["111"])
    with pytest.raises(HardwareError, match=r"'222'.*111"):
        RealSenseCamera("cam0", "222", 64, 64, rs_module=rs).start()


def test_realsense_fixed_exposure_rgb_resize_and_timestamps() -> None:
    rs = FakeRealSense(["111"])
    camera = RealSenseCamera("cam0", "111", 48, 64, exposure=150, white_balance=4600, rs_module=rs)
    camera.start()
    assert rs.enabled == [("color", 640, 480, "bgr8", 30)]
    assert rs.options["111"] == {"enable_auto_exposure": 0, "exposure": 150.0,
                                 "enable_auto_white_balance": 0, "white_balance": 4600.0}
    first = camera.read()
    time.sleep(0.05)  # longer than the device's 33 ms frame spacing
    second = camera.read()
    assert first.image.shape == (48, 64, 3) and first.image.dtype == np.uint8
    assert tuple(first.image[0, 0]) == (0, 0, 255), "BGR from the device, RGB out"
    assert second.capture_time - first.capture_time == pytest.approx(0.0333, abs=1e-3), "device clock, not arrival"
    assert second.capture_time <= second.receive_time + 1e-3
    camera.stop()


def test_realsense_stale_and_missing_frames_time_out() -> None:
    rs = FakeRealSense(["111"])
    camera = RealSenseCamera("cam0", "111", 32, 32, rs_module=rs)
    camera.start()
    camera.read()
    rs.frozen = True
    with pytest.raises(CameraTimeout, match="stale"):
        camera.read()
    rs.frozen = False
    rs.timeout_next = 1
    with pytest.raises(CameraTimeout, match="didn't arrive"):
        camera.read()
    assert camera.read().image.shape == (32, 32, 3)


def test_realsense_crop_then_resize() -> None:
    rs = FakeRealSense(["111"])
    camera = RealSenseCamera("cam0", "111", 32, 32, crop=(0, 80, 480, 480), rs_module=rs)
    camera.start()
    assert camera.read().image.shape == (32, 32, 3)
    bad = RealSenseCamera("cam0", "111", 32, 32, crop=(0, 400, 480, 480), rs_module=rs)
    bad.start()
    with pytest.raises(Exception, match="exceeds"):
        bad.read()


def test_missing_usb_camera_is_a_hardware_error() -> None:
    with pytest.raises(HardwareError, match="cannot open USB camera"):
        OpenCVCamera("cam0", "/dev/video-missing", 32, 32).start()
