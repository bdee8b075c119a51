"""WidowX, Franka + Robotiq and RealSense drivers against faithful fakes of their SDKs."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from sdk_fakes import DOWN, FakeFrankaArm, FakeRealSense, FakeRobotiqGripper, install_interbotix

from remix.common.errors import HardwareError
from robots.cameras import CameraTimeout, OpenCVCamera
from robots.geometry import euler_to_matrix, quat_xyzw_to_matrix
from robots.realsense import RealSenseCamera
from robots.robot import RobotFault

franky = pytest.importorskip("franky")


# ------------------------------------------------------------------------------------------------ WidowX
SCALE = 20.0  # the fake arm runs 20x faster; moving times below are the real ones / SCALE


def widowx(**kwargs):
    from robots.widowx import WidowXRobot

    defaults = dict(control_hz=5.0 * SCALE, moving_time_s=0.2 / SCALE, accel_time_s=0.09 / SCALE,
                    reset_moving_time_s=1.5 / SCALE, reset_accel_time_s=0.3 / SCALE, gripper_travel_s=1.0 / SCALE)
    defaults.update(kwargs)
    return WidowXRobot(**defaults)


def interbotix(monkeypatch, ros2: bool, **kwargs):
    return install_interbotix(monkeypatch, ros2, time_scale=SCALE, **kwargs)


def test_widowx_without_interbotix_names_what_to_install(monkeypatch) -> None:
    for name in ("interbotix_xs_modules", "interbotix_xs_modules.arm", "interbotix_xs_modules.xs_robot.arm"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(HardwareError, match="Interbotix.*remix-robot-server"):
        widowx().connect()


@pytest.mark.parametrize("ros2", [False, True], ids=["ros1", "ros2"])
def test_widowx_reset_and_blocking_steps(monkeypatch, ros2: bool) -> None:
    registry = interbotix(monkeypatch, ros2)
    with widowx() as robot:  # ROS1's bot has no `core` (it is `dxl`): every read goes through arm.core
        bot = registry["bots"][0]
        assert robot._ros_version == ("ros2" if ros2 else "ros1")
        assert registry["startups"] == (1 if ros2 else 0)
        obs = robot.reset()
        assert bot.gripper.calls[0] == ("release" if ros2 else "open")
        assert any(call.get("joints", [None])[:2] == [-0.1319, -0.7624] for call in bot.arm.calls), "neutral joints"
        np.testing.assert_allclose(obs.state, [0.3, 0, 0.15, 0, 0, 0, 1], atol=1e-6)
        robot.send_action([0.02, 0, 0, 0, 0, 0.1, 0.0])
        call = bot.arm.calls[-1]
        assert call["blocking"] is True and call["moving_time"] == 0.2 / SCALE and call["custom_guess"] is not None
        np.testing.assert_allclose(call["T"][:3, 3], [0.32, 0, 0.15], atol=1e-9)
        np.testing.assert_allclose(call["T"][:3, :3], euler_to_matrix(np.array([0, 0, 0.1])) @ DOWN, atol=1e-9)
        assert bot.gripper.calls[-1] == ("grasp" if ros2 else "close")
        robot.send_action([0.0, 0, 0, 0, 0, 0, 0.2])
        assert bot.gripper.calls.count("grasp" if ros2 else "close") == 1, "gripper commands only on change"
        time.sleep(1.0 / SCALE)  # the fingers take their travel time
        assert robot.get_observation().state[6] == pytest.approx(0.0)


def test_widowx_ros1_bot_has_no_core_attribute(monkeypatch) -> None:
    registry = interbotix(monkeypatch, ros2=False)
    with widowx() as robot:
        bot = registry["bots"][0]
        assert not hasattr(bot, "core") and bot.dxl is bot.arm.core
        assert robot.get_observation().state.shape == (7,)


def test_widowx_reset_from_far_sets_the_moving_time_first(monkeypatch) -> None:
    """The SDK checks joint speeds against the previous (0.2 s step) moving time; without
    set_trajectory_time first, the neutral move from 20 cm away is refused ("Would exceed velocity limits")."""
    registry = interbotix(monkeypatch, ros2=True)
    with widowx() as robot:
        robot.reset()
        arm = registry["bots"][0].arm
        for _ in range(4):
            robot.send_action([0.05, 0.0, 0.0, 0, 0, 0, 1])  # 20 cm away at 0.2 s per step
        assert arm.moving_time == pytest.approx(0.2 / SCALE)
        obs = robot.reset()
        assert not arm.warnings, arm.warnings
        np.testing.assert_allclose(obs.state[:3], [0.3, 0, 0.15], atol=1e-6)


def test_widowx_refused_neutral_move_is_reported_not_hidden(monkeypatch) -> None:
    registry = interbotix(monkeypatch, ros2=False)
    with widowx(neutral_joints=[3.1, -0.7624, 0.4449, -0.0199, 1.7564, -0.1595],  # 3.2 rad of waist in 0.5 s
                reset_moving_time_s=0.5 / SCALE, reset_accel_time_s=0.1 / SCALE) as robot:
        with pytest.raises(HardwareError, match="refused the neutral joints"):
            robot.reset()
        assert any("velocity" in w for w in registry["bots"][0].arm.warnings)


def test_widowx_finger_travel_time_is_waited_for_on_reset(monkeypatch) -> None:
    registry = interbotix(monkeypatch, ros2=True)
    with widowx() as robot:
        robot.reset()
        robot.send_action([0.0, 0, 0, 0, 0, 0, 0.0])  # close
        time.sleep(1.0 / SCALE)
        core = registry["bots"][0].arm.core
        assert core.finger_position() == pytest.approx(0.015)
        robot.reset()
        assert robot.get_observation().state[6] == pytest.approx(1.0), "fingers fully open when reset returns"


def test_widowx_deltas_accumulate_on_the_target_not_the_measurement(monkeypatch) -> None:
    registry = interbotix(monkeypatch, ros2=True)
    with widowx() as robot:
        robot.reset()
        arm = registry["bots"][0].arm
        arm.stalled = True  # one command that the arm does not follow
        robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        arm.stalled = False
        robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        np.testing.assert_allclose(arm.calls[-1]["T"][:3, 3], [0.34, 0, 0.15], atol=1e-9)


def test_widowx_ik_failure_skips_and_reports(monkeypatch) -> None:
    registry = interbotix(monkeypatch, ros2=False)
    with widowx() as robot:
        robot.reset()
        registry["bots"][0].arm.ik_fail_next = 1
        applied = robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        np.testing.assert_array_equal(applied[:6], 0)
        assert robot.events.ik_failures == 1
        robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        assert robot.get_observation().state[0] == pytest.approx(0.32)


@pytest.mark.parametrize("ros2", [False, True], ids=["ros1", "ros2"])
def test_widowx_motor_stall_reboots_restores_profile_and_is_a_robot_fault(monkeypatch, ros2: bool) -> None:
    registry = interbotix(monkeypatch, ros2=ros2)
    with widowx() as robot:
        robot.reset()
        bot = registry["bots"][0]
        bot.arm.stalled = True
        with pytest.raises(RobotFault, match="overloaded"):
            for _ in range(10):
                robot.send_action([0.05, 0, 0, 0, 0, 0, 1])
        core = bot.arm.core
        assert ("group", "arm", True, True) in core.reboots and robot.reboots == 1
        assert core.registers == {"Profile_Velocity": int(bot.arm.moving_time * 1000),
                                  "Profile_Acceleration": int(bot.arm.accel_time * 1000)}, "profile restored after reboot"
        assert {"capture": True} in bot.arm.calls, "joint commands re-synced to the encoders"
        bot.arm.stalled = False
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])  # resynced to where the arm really is
        assert bot.arm.calls[-1]["T"][0, 3] == pytest.approx(robot.get_observation().state[0])
        assert bot.arm.unprofiled_moves == 0, "no move at the registers' reboot defaults (full speed)"


def test_widowx_targets_stay_in_the_workspace(monkeypatch) -> None:
    registry = interbotix(monkeypatch, ros2=True)
    with widowx() as robot:
        robot.reset()
        for _ in range(12):
            robot.send_action([0.05, -0.05, -0.05, 0, 0, 0, 1])
        positions = np.array([c["T"][:3, 3] for c in registry["bots"][0].arm.calls if "T" in c])
        assert robot.limits.contains(positions.min(0)) and robot.limits.contains(positions.max(0))


@pytest.mark.parametrize("ros2", [False, True], ids=["ros1", "ros2"])
def test_widowx_reconnects_in_the_same_process(monkeypatch, ros2: bool) -> None:
    """ROS2's robot_shutdown leaves the global node and the startup flag set: a second bot raises."""
    registry = interbotix(monkeypatch, ros2=ros2)
    for _ in range(2):
        with widowx() as robot:
            robot.reset()
            robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
    assert len(registry["bots"]) == 1 and registry["startups"] == (1 if ros2 else 0)


@pytest.mark.parametrize("ros2", [False, True], ids=["ros1", "ros2"])
def test_widowx_connect_times_out_without_xs_sdk(monkeypatch, ros2: bool) -> None:
    registry = interbotix(monkeypatch, ros2=ros2)
    registry["xs_sdk"] = False  # ROS2 waits for its services forever, ROS1 calls sys.exit(1)
    started = time.monotonic()
    try:
        with pytest.raises(HardwareError, match="xs_sdk"):
            widowx(connect_timeout_s=0.5).connect()
    finally:
        registry["release"].set()
    assert time.monotonic() - started < 2.0


# ------------------------------------------------------------------------------------------------ Franka
def franka(**kwargs):
    from robots.franka import FrankaRobot

    defaults = dict(control_hz=50.0, gripper={"com_port": "/dev/ttyUSB9", "poll_s": 0.005}, load={"mass": 0.9, "center_of_mass": [0, 0, 0.06]},
                    robot_factory=FakeFrankaArm, gripper_factory=FakeRobotiqGripper)
    defaults.update(kwargs)
    return FrankaRobot(**defaults)


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
        assert arm.relative_dynamics_factor == 1.0, "franky multiplies robot and motion factors: set them once"
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
            time.sleep(max(0.0, robot.period_s - durations[-1]))  # at the control rate (the speed limit counts time)
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


# ------------------------------------------------------------------------------------------- SDK defects
def test_franka_stop_then_next_action_is_not_a_fault() -> None:
    """franky re-raises "Move command preempted" at the next move after Robot.stop()."""
    with franka(gripper=None, gripper_factory=None) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        robot.stop()
        robot.resume()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        robot.stop()
        robot.reset()  # the reset after an end-of-trial stop
        assert robot.events.faults == 0 and robot.arm.recover_calls == 1


def test_franka_watchdog_stop_then_resume_is_not_a_fault() -> None:
    with franka(gripper=None, gripper_factory=None, control_hz=50.0) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        time.sleep(0.15)
        assert robot.events.watchdog_trips == 1
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        assert robot.events.faults == 0 and robot.arm.moves[-1][1] is True


def test_franka_dynamics_factor_is_applied_once() -> None:
    with franka(gripper=None, gripper_factory=None, dynamics={"velocity": 0.5, "acceleration": 0.1, "jerk": 0.1}) as robot:
        robot.reset()
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        assert robot.arm.effective_factors[-1] == pytest.approx(0.5)
        assert robot.arm.effective_factors[0] == pytest.approx(0.2), "reset dynamics"


def test_franka_exceptions_outside_franky_exception_are_caught(monkeypatch) -> None:
    """franky 1.x: ControlException derives from builtins.Exception, not franky.Exception."""
    legacy = type("ControlException", (Exception,), {"__module__": "franky._franky"})
    assert not issubclass(legacy, franky.Exception)
    monkeypatch.setattr(franky, "ControlException", legacy)
    with franka(gripper=None, gripper_factory=None) as robot:
        robot.reset()
        robot.arm.reflex_next_move = True
        robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        with pytest.raises(RobotFault, match="discontinuity"):
            robot.send_action([0.01, 0, 0, 0, 0, 0, 1])


def test_franka_motion_reuse_exception_is_a_robot_fault() -> None:
    """Even in franky 2.0, franky's own exceptions (MotionReuseException, ...) are not franky.Exception."""
    assert not issubclass(franky.MotionReuseException, franky.Exception)
    with franka(gripper=None, gripper_factory=None) as robot:
        robot.reset()
        original = robot.arm.move

        def reuse(motion, asynchronous=False, **kwargs):
            robot.arm.move = original
            raise franky.MotionReuseException("motion already used")

        robot.arm.move = reuse
        with pytest.raises(RobotFault, match="already used"):
            robot.send_action([0.01, 0, 0, 0, 0, 0, 1])


@pytest.mark.parametrize("active", [True, False], ids=["already-active", "powered-up"])
def test_robotiq_connect_strokes_only_when_not_active(monkeypatch, active: bool) -> None:
    monkeypatch.setattr(FakeRobotiqGripper, "powered_up_active", active)
    with franka() as robot:
        assert robot.gripper._gripper.strokes == (0 if active else 1)
        assert robot.gripper._gripper.activated


def test_robotiq_fault_is_reported_once_then_recovered() -> None:
    with franka() as robot:
        robot.reset()
        fake = robot.gripper._gripper
        fake.fault = 14  # overcurrent: a major fault, cleared only by reset + activation
        with pytest.raises(RobotFault, match="Overcurrent"):
            for _ in range(50):
                robot.send_action([0, 0, 0, 0, 0, 0, 1])
                time.sleep(0.01)
        assert robot.gripper.recoveries == 1 and fake.strokes == 2 and fake.fault == 0
        robot.reset()
        robot.send_action([0, 0, 0, 0, 0, 0, 0.0])
        deadline = time.time() + 2.0
        while robot.gripper.opening > 1e-6 and time.time() < deadline:
            time.sleep(0.01)
        assert robot.gripper.opening == pytest.approx(0.0), "commands reach the gripper again"


def test_robotiq_lost_activation_is_recovered() -> None:
    with franka() as robot:
        robot.reset()
        fake = robot.gripper._gripper
        fake.activated = False  # e.g. a power glitch of the gripper
        with pytest.raises(RobotFault, match="activated"):
            for _ in range(50):
                robot.send_action([0, 0, 0, 0, 0, 0, float(_ % 2)])
                time.sleep(0.01)
        assert robot.gripper.recoveries == 1 and fake.activated


def test_opencv_read_honours_the_timeout_when_the_device_blocks() -> None:
    from sdk_fakes import FakeVideoCapture

    captures: list[FakeVideoCapture] = []

    def factory(device):
        captures.append(FakeVideoCapture(device))
        return captures[-1]

    camera = OpenCVCamera("cam0", 0, 24, 32, capture_factory=factory, max_age_s=0.5)
    camera.start()
    assert camera.read(0.5).image.shape == (24, 32, 3)
    captures[0].blocked.set()  # frames stop coming (cable pulled, USB bandwidth): V4L2 would block ~10 s
    started = time.monotonic()
    with pytest.raises(CameraTimeout, match="no frame within 0.2 s"):
        camera.read(0.2)
    with pytest.raises(CameraTimeout):  # the blocked read is waited for, not duplicated
        camera.read(0.2)
    assert time.monotonic() - started < 1.0 and captures[0].reads == 1
    captures[0].release_block()  # frames again: the pending read delivers, then reads go on as before
    frame = camera.read(0.5)
    assert frame.image[0, 0, 0] == 200 and captures[0].reads == 2
    camera.read(0.5)
    assert captures[0].reads == 3
    camera.stop()


def test_franka_lost_state_stream_is_a_hardware_error(monkeypatch) -> None:
    """libfranka's UDP state timeout surfaces as RuntimeError("Net Exception") from the state properties."""
    def lost(self):
        raise RuntimeError("Net Exception")

    with franka(gripper=None, gripper_factory=None) as robot:
        robot.reset()
        monkeypatch.setattr(FakeFrankaArm, "current_cartesian_state", property(lost))
        with pytest.raises(HardwareError, match="state stream.*Net Exception"):
            robot.get_observation()
