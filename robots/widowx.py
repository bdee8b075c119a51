"""WidowX 250 through the Interbotix API (ROS1 or ROS2), blocking, BridgeData conventions.

Each action is applied to the previous *target* pose (not the measured one) and sent with a blocking
`set_ee_pose_matrix(..., moving_time=0.2)`, which publishes joint goals and sleeps for the moving time.
An IK failure skips that command (the base class counts and reports it). When the arm stops following
its targets for a few commands (a Dynamixel overload/stall), the motors are rebooted through the SDK
and the trial is reported as a robot fault. Reset follows BridgeData: open the gripper, lift if low,
neutral joints, then the reset pose gripper-down.

Orientation in the state and the actions is relative to gripper-down (`down_rotation`), so the home
pose reads (0, 0, 0) instead of sitting on the euler singularity at pitch = 90 degrees.

SDK behaviours this driver is built around (interbotix_ros_toolboxes, ROS1 noetic and ROS2 humble):
- the bot holds its core as `dxl` in ROS1 and `core` in ROS2; the arm group's `arm.core` exists in both;
- `set_joint_positions`/`set_ee_pose_matrix` check joint speeds against the moving time set *before*
  the call and only then apply the new one, so a slow (reset) move after fast steps is refused unless
  `set_trajectory_time` is called first; a refusal is only visible in the return value;
- the Profile_Velocity/Acceleration registers are written only when the moving time changes, and a motor
  reboot resets them, so they are rewritten after every reboot;
- ROS1 `sys.exit(1)`s when xs_sdk is not running and ROS2 waits forever: construction runs on a thread
  with a timeout; ROS2's startup/shutdown can run once per process, so one bot per model is kept for
  the life of the process and reused on reconnect.

Interbotix is a ROS package (not on PyPI), imported only in `connect()`; the policy side never needs it.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from remix.common.errors import ConfigError, HardwareError
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

# One Interbotix bot per (ros, model) for the life of the process: ROS2 cannot start up twice.
_BOTS: dict[tuple[str, str], Any] = {}
_BOTS_LOCK = threading.Lock()


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


def _construct_with_timeout(build: Any, timeout_s: float, what: str) -> Any:
    """Run a constructor that may block forever (ROS2 without xs_sdk) or sys.exit (ROS1) on a daemon thread."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = build()
        except BaseException as error:  # SystemExit from ROS1's core when xs_sdk is missing
            result["error"] = error

    thread = threading.Thread(target=run, name="interbotix-connect", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise HardwareError(f"{what}: no answer within {timeout_s:g} s; is the xs_sdk node running "
                            "(ros2 launch / roslaunch interbotix_xsarm_control xsarm_control.launch)?")
    if "error" in result:
        error = result["error"]
        detail = f"exit code {error.code}" if isinstance(error, SystemExit) else str(error) or type(error).__name__
        raise HardwareError(f"{what} failed ({detail}); is the xs_sdk node running for this robot_model?") from None
    return result["value"]


def _shutdown_ros2(startup: Any) -> None:
    try:
        startup.robot_shutdown()
    except Exception as error:  # at exit: nothing left to do about it
        log.warning("interbotix shutdown failed: %s", error)


class WidowXRobot(ArmRobot):
    """Interbotix WidowX 250 6-DoF with BridgeData defaults (blocking, 5 Hz)."""

    def __init__(self, name: str = "widowx", robot_model: str = "wx250s", ros: str = "auto", control_hz: float = 5.0,
                 moving_time_s: float = 0.2, accel_time_s: float = 0.09, reset_moving_time_s: float = 1.5,
                 reset_accel_time_s: float = 0.3,
                 workspace_low: Sequence[float] = (0.1, -0.15, -0.01), workspace_high: Sequence[float] = (0.45, 0.25, 0.25),
                 max_translation: float = 0.05, max_rotation: float = 0.25, safe_height: float | None = 0.15,
                 home: Sequence[float] = (0.3, 0.0, 0.15, 0.0, 0.0, 0.0, 1.0),
                 neutral_joints: Sequence[float] = BRIDGE_NEUTRAL_JOINTS,
                 down_rotation: Sequence[Sequence[float]] = GRIPPER_DOWN,
                 finger_closed: float = 0.015, finger_open: float = 0.037, gripper_travel_s: float = 1.0,
                 tracking_tolerance_m: float = 0.03, fault_after_misses: int = 3, connect_timeout_s: float = 30.0,
                 cameras: Mapping[str, Sequence[int]] | None = None,
                 camera_devices: Mapping[str, Mapping[str, Any]] | None = None, camera_retries: int = 2) -> None:
        limits = SafetyLimits(tuple(workspace_low), tuple(workspace_high), max_translation, max_rotation,  # type: ignore[arg-type]
                              2.0, safe_height)
        super().__init__(name, "blocking", control_hz, limits, Pose.from_state(home), make_cameras(cameras, camera_devices), camera_retries)
        if moving_time_s <= 0 or moving_time_s > self.period_s + 1e-9:
            raise ConfigError(f"widowx moving_time_s must be in (0, {self.period_s:g}] (one control period)")
        self.robot_model = robot_model
        self.ros = str(ros)
        self.moving_time_s = float(moving_time_s)
        self.accel_time_s = float(accel_time_s)
        self.reset_moving_time_s = float(reset_moving_time_s)
        self.reset_accel_time_s = float(reset_accel_time_s)
        self.neutral_joints = [float(v) for v in neutral_joints]
        self.down = np.asarray(down_rotation, dtype=np.float64)
        if self.down.shape != (3, 3) or not np.allclose(self.down @ self.down.T, np.eye(3), atol=1e-6):
            raise ConfigError("widowx down_rotation must be a 3x3 rotation matrix")
        self.finger_closed, self.finger_open = float(finger_closed), float(finger_open)
        self.gripper_travel_s = float(gripper_travel_s)  # PWM fingers take ~1 s end to end
        self.tracking_tolerance_m = float(tracking_tolerance_m)
        self.fault_after_misses = int(fault_after_misses)
        self.connect_timeout_s = float(connect_timeout_s)
        self.bot: Any = None
        self._ros_version = ""
        self._gripper_closed: bool | None = None
        self._misses = 0
        self.reboots = 0

    # ------------------------------------------------------------------------------------------- frames
    @property
    def core(self) -> Any:
        """The InterbotixRobotXSCore: `arm.core` in both ROS1 (bot.dxl) and ROS2 (bot.core)."""
        return self.bot.arm.core

    def _pose_matrix(self, pose: Pose) -> np.ndarray:
        transform = np.eye(4)
        transform[:3, :3] = euler_to_matrix(np.asarray(pose.euler)) @ self.down
        transform[:3, 3] = pose.position
        return transform

    def _joint(self, name: str) -> float:
        core = self.core
        with core.js_mutex:
            return float(core.joint_states.position[core.js_index_map[name]])

    def _arm_joints(self) -> list[float]:
        return [self._joint(n) for n in self.bot.arm.group_info.joint_names]

    # -------------------------------------------------------------------------------------------- hooks
    def _connect(self) -> None:
        self._ros_version, manipulator, startup = import_interbotix(self.ros)
        key = (self._ros_version, self.robot_model)
        with _BOTS_LOCK:
            bot = _BOTS.get(key)
            if bot is None:
                bot = _construct_with_timeout(lambda: self._build(manipulator, startup), self.connect_timeout_s,
                                              f"starting the Interbotix {self.robot_model} through {self._ros_version}")
                _BOTS[key] = bot
        self.bot = bot
        self._gripper_closed = None
        # A reused bot keeps its cached moving time; make the registers match it (a reboot may have reset them).
        self._write_profile()
        log.info("widowx connected through %s", self._ros_version)

    def _build(self, manipulator: Any, startup: Any) -> Any:
        bot = manipulator(robot_model=self.robot_model, group_name="arm", gripper_name="gripper",
                          moving_time=self.reset_moving_time_s, accel_time=self.reset_accel_time_s)
        if startup is not None:
            startup.robot_startup()
            atexit.register(_shutdown_ros2, startup)
        return bot

    def _disconnect(self) -> None:
        self.bot = None  # the bot (and ROS2's node) lives on for a later connect in this process

    def _read_pose(self) -> Pose:
        if self.bot is None:
            return self.home
        transform = np.asarray(self.bot.arm.get_ee_pose(), dtype=np.float64)
        euler = matrix_to_euler(transform[:3, :3] @ self.down.T)
        opening = (self._joint("left_finger") - self.finger_closed) / (self.finger_open - self.finger_closed)
        return Pose.from_arrays(transform[:3, 3], euler, float(np.clip(opening, 0.0, 1.0)))

    def _set_gripper(self, opening: float, wait: bool = False) -> None:
        closed = opening < 0.5
        if closed == self._gripper_closed:
            return
        gripper = self.bot.gripper
        delay = self.gripper_travel_s if wait else 0.0
        if self._ros_version == "ros2":
            (gripper.grasp if closed else gripper.release)(delay=delay)
        else:
            (gripper.close if closed else gripper.open)(delay=delay)
        self._gripper_closed = closed

    def _timing(self, moving_time: float, accel_time: float) -> None:
        """Apply the moving time *before* a move: the SDK checks joint speeds against the current one."""
        self.bot.arm.set_trajectory_time(moving_time=moving_time, accel_time=accel_time)

    def _command(self, target: Pose) -> bool:
        self._set_gripper(target.gripper)
        self._timing(self.moving_time_s, self.accel_time_s)
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
        self._set_gripper(target.gripper, wait=True)
        self._timing(self.reset_moving_time_s, self.reset_accel_time_s)
        _, success = self.bot.arm.set_ee_pose_matrix(self._pose_matrix(target), custom_guess=self.bot.arm.get_joint_commands(),
                                                     moving_time=self.reset_moving_time_s,
                                                     accel_time=self.reset_accel_time_s, blocking=True)
        return bool(success)

    def _hold(self) -> None:
        pass  # blocking control: nothing moves between commands

    def _halt(self) -> None:
        if self.bot is None:
            return
        # Supersede the running joint goal with where the joints are now. Called without the lock while a
        # step may be running, so the moving time is passed to the call only (no separate register write);
        # the speed check is moot (the goal is where the joints are).
        if not self.bot.arm.set_joint_positions(self._arm_joints(), moving_time=self.moving_time_s,
                                                accel_time=self.accel_time_s, blocking=False):
            log.warning("widowx: the SDK refused the hold command (joint limits); the last goal stays active")

    def _reset(self, seed: int | None) -> None:
        current = self._read_pose()
        self._set_gripper(1.0, wait=True)  # fingers open before the arm moves away from an object
        height = self.limits.safe_height or self.home.position[2]
        if current.position[2] < height:
            lifted = current.replace(position=(*current.position[:2], height), gripper=1.0)
            if not self._move_to(lifted):
                log.warning("widowx reset: cannot lift straight up from %s; going to neutral directly",
                            np.round(current.position, 3).tolist())
        self._timing(self.reset_moving_time_s, self.reset_accel_time_s)
        if not self.bot.arm.set_joint_positions(self.neutral_joints, moving_time=self.reset_moving_time_s,
                                                accel_time=self.reset_accel_time_s, blocking=True):
            raise HardwareError(f"{self.name}: the SDK refused the neutral joints {self.neutral_joints} (joint or velocity "
                                "limits, see the xs_sdk log); fix robot.neutral_joints or raise reset_moving_time_s")
        if not self._move_to(self.home):
            raise HardwareError(f"{self.name}: the reset pose {list(self.home.position)} has no IK solution; fix robot.home")
        self._misses = 0

    def _write_profile(self) -> None:
        """Write the time-based profile registers for the SDK's cached moving/accel time (the SDK only
        writes them when the time changes, and a motor reboot resets them to their defaults)."""
        arm = self.bot.arm
        self.core.robot_set_motor_registers("group", "arm", "Profile_Velocity", int(arm.moving_time * 1000))
        self.core.robot_set_motor_registers("group", "arm", "Profile_Acceleration", int(arm.accel_time * 1000))

    def _recover(self, fault: ArmFault) -> None:
        """Motor-fault hook: reboot the motors in an error state (torque back on), restore the profile
        registers the reboot reset, then take the encoders' positions as the joint commands so the next
        move starts from where the arm really is."""
        core = self.core
        core.robot_reboot_motors("group", "arm", True, smart_reboot=True)
        core.robot_reboot_motors("single", "gripper", True)
        self._write_profile()
        self.reboots += 1
        self._gripper_closed = None
        self.bot.arm.capture_joint_positions()
