"""WidowX 250 through the Interbotix API (ROS1 or ROS2), blocking, BridgeData conventions.

Each action is applied to the previous *target* pose (not the measured one) and sent with a blocking
`set_ee_pose_matrix(..., moving_time=0.2)`, which publishes joint goals and sleeps for the moving time.
An IK failure skips that command (the base class counts and reports it). When the arm stops following
its targets for a few commands (a Dynamixel overload/stall), the motors are rebooted through the SDK
and the trial is reported as a robot fault. Reset follows BridgeData: open the gripper, lift if low,
neutral joints, then the reset pose gripper-down.

Orientation in the state and the actions is relative to gripper-down (`down_rotation`), so the home
pose reads (0, 0, 0) instead of sitting on the euler singularity at pitch = 90 degrees.

Interbotix is a ROS package (not on PyPI), imported only in `connect()`; the policy side never needs it.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from remix.errors import ConfigError, HardwareError
from robots.cameras import make_cameras
from robots.geometry import euler_to_matrix, matrix_to_euler
from robots.robot import ArmFault, ArmRobot
from robots.safety import Pose, SafetyLimits

log = logging.getLogger("robots.widowx")

BRIDGE_NEUTRAL_JOINTS = (-0.1319, -0.7624, 0.4449, -0.0199, 1.7564, -0.1595)
GRIPPER_DOWN = ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0))
INSTALL_HINT = ("install the Interbotix ROS packages (interbotix_ros_manipulators for ROS1 noetic or ROS2 humble, "
                "https://docs.trossenrobotics.com) and start the xs_sdk node, or run `remix-robot-server robot=widowx` "
                "inside your ROS container and use robot=remote on this machine")


def import_interbotix(ros: str) -> tuple[str, Any, Any]:
    """(ros version, InterbotixManipulatorXS class, ROS2 startup module or None), trying ROS2 then ROS1 on 'auto'."""
    tried: list[str] = []
    if ros in ("auto", "2", "ros2"):
        try:
            arm = importlib.import_module("interbotix_xs_modules.xs_robot.arm")
            try:
                startup = importlib.import_module("interbotix_common_modules.common_robot.robot")
            except ImportError:
                startup = None  # older ROS2 releases start the executor in the constructor
            return "ros2", arm.InterbotixManipulatorXS, startup
        except ImportError as error:
            tried.append(f"ROS2 interbotix_xs_modules.xs_robot.arm ({error})")
    if ros in ("auto", "1", "ros1"):
        try:
            arm = importlib.import_module("interbotix_xs_modules.arm")
            return "ros1", arm.InterbotixManipulatorXS, None
        except ImportError as error:
            tried.append(f"ROS1 interbotix_xs_modules.arm ({error})")
    if not tried:
        raise ConfigError(f"widowx ros={ros!r} is unknown; use auto, ros1 or ros2")
    raise HardwareError(f"WidowX needs the Interbotix Python API, not importable here: tried {'; '.join(tried)}; {INSTALL_HINT}")


class WidowXRobot(ArmRobot):
    """Interbotix WidowX 250 6-DoF with BridgeData defaults (blocking, 5 Hz)."""

    def __init__(self, name: str = "widowx", robot_model: str = "wx250s", ros: str = "auto", control_hz: float = 5.0,
                 moving_time_s: float = 0.2, accel_time_s: float = 0.09, reset_moving_time_s: float = 1.5,
                 workspace_low: Sequence[float] = (0.1, -0.15, -0.01), workspace_high: Sequence[float] = (0.45, 0.25, 0.25),
                 max_translation: float = 0.05, max_rotation: float = 0.25, safe_height: float | None = 0.15,
                 home: Sequence[float] = (0.3, 0.0, 0.15, 0.0, 0.0, 0.0, 1.0),
                 neutral_joints: Sequence[float] = BRIDGE_NEUTRAL_JOINTS,
                 down_rotation: Sequence[Sequence[float]] = GRIPPER_DOWN,
                 finger_closed: float = 0.015, finger_open: float = 0.037,
                 tracking_tolerance_m: float = 0.03, fault_after_misses: int = 3,
                 cameras: Mapping[str, Mapping[str, Any]] | None = None, camera_retries: int = 2) -> None:
        limits = SafetyLimits(tuple(workspace_low), tuple(workspace_high), max_translation, max_rotation,  # type: ignore[arg-type]
                              2.0, safe_height)
        super().__init__(name, "blocking", control_hz, limits, Pose.from_state(home), make_cameras(cameras), camera_retries)
        if moving_time_s <= 0 or moving_time_s > self.period_s + 1e-9:
            raise ConfigError(f"widowx moving_time_s must be in (0, {self.period_s:g}] (one control period)")
        self.robot_model = robot_model
        self.ros = str(ros)
        self.moving_time_s = float(moving_time_s)
        self.accel_time_s = float(accel_time_s)
        self.reset_moving_time_s = float(reset_moving_time_s)
        self.neutral_joints = [float(v) for v in neutral_joints]
        self.down = np.asarray(down_rotation, dtype=np.float64)
        if self.down.shape != (3, 3) or not np.allclose(self.down @ self.down.T, np.eye(3), atol=1e-6):
            raise ConfigError("widowx down_rotation must be a 3x3 rotation matrix")
        self.finger_closed, self.finger_open = float(finger_closed), float(finger_open)
        self.tracking_tolerance_m = float(tracking_tolerance_m)
        self.fault_after_misses = int(fault_after_misses)
        self.bot: Any = None
        self._ros_version = ""
        self._startup: Any = None
        self._gripper_closed: bool | None = None
        self._misses = 0
        self.reboots = 0

    # ------------------------------------------------------------------------------------------- frames
    def _pose_matrix(self, pose: Pose) -> np.ndarray:
        transform = np.eye(4)
        transform[:3, :3] = euler_to_matrix(np.asarray(pose.euler)) @ self.down
        transform[:3, 3] = pose.position
        return transform

    def _arm_joints(self) -> list[float]:
        core = self.bot.core
        return [float(core.joint_states.position[core.js_index_map[n]]) for n in self.bot.arm.group_info.joint_names]

    # -------------------------------------------------------------------------------------------- hooks
    def _connect(self) -> None:
        self._ros_version, manipulator, self._startup = import_interbotix(self.ros)
        try:
            self.bot = manipulator(robot_model=self.robot_model, group_name="arm", gripper_name="gripper",
                                   moving_time=self.reset_moving_time_s, accel_time=0.3)
            if self._startup is not None:
                self._startup.robot_startup()
        except Exception as error:
            raise HardwareError(f"cannot start the Interbotix {self.robot_model} ({error}); is the xs_sdk node running "
                                f"(roslaunch/ros2 launch interbotix_xsarm_control xsarm_control.launch robot_model:={self.robot_model})?") from error
        log.info("widowx connected through %s", self._ros_version)

    def _disconnect(self) -> None:
        if self.bot is not None and self._startup is not None:
            try:
                self._startup.robot_shutdown()
            except Exception as error:
                log.warning("interbotix shutdown failed: %s", error)
        self.bot = None

    def _read_pose(self) -> Pose:
        if self.bot is None:
            return self.home
        transform = np.asarray(self.bot.arm.get_ee_pose(), dtype=np.float64)
        euler = matrix_to_euler(transform[:3, :3] @ self.down.T)
        finger = float(self.bot.core.joint_states.position[self.bot.core.js_index_map["left_finger"]])
        opening = (finger - self.finger_closed) / (self.finger_open - self.finger_closed)
        return Pose.from_arrays(transform[:3, 3], euler, float(np.clip(opening, 0.0, 1.0)))

    def _set_gripper(self, opening: float) -> None:
        closed = opening < 0.5
        if closed == self._gripper_closed:
            return
        gripper = self.bot.gripper
        if self._ros_version == "ros2":
            (gripper.grasp if closed else gripper.release)(delay=0.0)
        else:
            (gripper.close if closed else gripper.open)(delay=0.0)
        self._gripper_closed = closed

    def _command(self, target: Pose) -> bool:
        self._set_gripper(target.gripper)
        _, success = self.bot.arm.set_ee_pose_matrix(self._pose_matrix(target), custom_guess=self.bot.arm.get_joint_commands(),
                                                     moving_time=self.moving_time_s, accel_time=self.accel_time_s, blocking=True)
        if not success:
            return False
        error = float(np.linalg.norm(np.asarray(self._read_pose().position) - np.asarray(target.position)))
        self._misses = self._misses + 1 if error > self.tracking_tolerance_m else 0
        if self._misses >= self.fault_after_misses:
            self._misses = 0
            raise ArmFault(f"the arm stopped following its targets ({error * 100:.1f} cm off for "
                           f"{self.fault_after_misses} steps): a motor is likely overloaded")
        return True

    def _move_to(self, target: Pose) -> bool:
        self._set_gripper(target.gripper)
        _, success = self.bot.arm.set_ee_pose_matrix(self._pose_matrix(target), custom_guess=self.bot.arm.get_joint_commands(),
                                                     moving_time=self.reset_moving_time_s, accel_time=0.3, blocking=True)
        return bool(success)

    def _hold(self) -> None:
        pass  # blocking control: nothing moves between commands

    def _halt(self) -> None:
        if self.bot is not None:  # supersede the running joint goal with where the joints are now
            self.bot.arm.set_joint_positions(self._arm_joints(), moving_time=0.2, accel_time=0.1, blocking=False)

    def _reset(self, seed: int | None) -> None:
        current = self._read_pose()
        self._set_gripper(1.0)
        if current.position[2] < (self.limits.safe_height or self.home.position[2]):
            self._move_to(current.replace(position=(*current.position[:2], self.limits.safe_height or self.home.position[2]),
                                          gripper=1.0))
        self.bot.arm.set_joint_positions(self.neutral_joints, moving_time=self.reset_moving_time_s, accel_time=0.3, blocking=True)
        if not self._move_to(self.home):
            raise HardwareError(f"{self.name}: the reset pose {list(self.home.position)} has no IK solution; fix robot.home")
        self._misses = 0

    def _recover(self, fault: ArmFault) -> None:
        """Motor-fault hook: reboot the motors in an error state (torque back on), then take the encoders'
        positions as the joint commands so the next move starts from where the arm really is."""
        core = self.bot.core
        core.robot_reboot_motors("group", "arm", True, smart_reboot=True)
        core.robot_reboot_motors("single", "gripper", True)
        self.reboots += 1
        self._gripper_closed = None
        self.bot.arm.capture_joint_positions()
