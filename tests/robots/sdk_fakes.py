"""Faithful fakes of the robot SDK surfaces this machine cannot drive (no arm, no ROS, no cameras).

Names and signatures follow the real packages: Interbotix `interbotix_xs_modules` (ROS1 `arm`, ROS2
`xs_robot.arm` + `interbotix_common_modules.common_robot.robot`), franky's `Robot` (value objects such as
Affine, CartesianMotion and CartesianState are the real franky classes), pyrobotiqgripper's
`RobotiqGripper` and pyrealsense2's context/config/pipeline. Each fake records what it was asked to do
and can inject the failures the drivers must survive.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from types import SimpleNamespace
from typing import Any

import numpy as np

WIDOWX_JOINTS = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"]
DOWN = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


# ------------------------------------------------------------------------------------------ Interbotix
NEUTRAL = np.array([-0.1319, -0.7624, 0.4449, -0.0199, 1.7564, -0.1595])
NEUTRAL_POSE = np.array([0.25, 0.0, 0.2, 0.0, 0.0, 0.0])  # where the fake's kinematics put the neutral joints
RAD_PER_M = 4.0  # joint travel per metre of end-effector travel near the workspace (wx250s order of magnitude)
VELOCITY_LIMIT = np.pi  # rad/s, as group_info.joint_velocity_limits reports for the wx250s arm joints


def fake_ik(T: np.ndarray) -> np.ndarray:
    """Linear stand-in kinematics: joints = neutral + J (pose - neutral pose), invertible by `fake_fk`."""
    from robots.geometry import matrix_to_euler

    pose = np.concatenate([T[:3, 3], matrix_to_euler(T[:3, :3] @ DOWN.T)])
    return NEUTRAL + np.concatenate([RAD_PER_M * (pose[:3] - NEUTRAL_POSE[:3]), pose[3:] - NEUTRAL_POSE[3:]])


def fake_fk(theta) -> np.ndarray:
    from robots.geometry import euler_to_matrix

    delta = np.asarray(theta, dtype=float) - NEUTRAL
    T = np.eye(4)
    T[:3, 3] = NEUTRAL_POSE[:3] + delta[:3] / RAD_PER_M
    T[:3, :3] = euler_to_matrix(NEUTRAL_POSE[3:] + delta[3:]) @ DOWN
    return T


class FakeJointStates:
    """sensor_msgs/JointState stand-in whose finger positions follow the gripper's travel in wall time."""

    def __init__(self, core: FakeXSCore) -> None:
        self.core = core
        self.name = list(core.names)

    @property
    def position(self) -> list[float]:
        finger = self.core.finger_position()
        return [*self.core.arm_joints, 0.0, finger, -finger]


class FakeXSCore:
    """InterbotixRobotXSCore stand-in: joint states, motor registers (reset by a reboot), reboot calls."""

    def __init__(self, finger_travel_s: float) -> None:
        self.names = [*WIDOWX_JOINTS, "gripper", "left_finger", "right_finger"]
        self.js_index_map = {n: i for i, n in enumerate(self.names)}
        self.js_mutex = threading.Lock()
        self.arm_joints = list(NEUTRAL)  # measured (encoder) positions
        self.finger_travel_s = finger_travel_s
        self._finger = (0.037, 0.037, 0.0)  # (from, to, start time)
        self.joint_states = FakeJointStates(self)
        self.registers = {"Profile_Velocity": 0, "Profile_Acceleration": 0}  # Dynamixel RAM defaults
        self.register_writes: list[tuple[str, int]] = []
        self.reboots: list[tuple] = []

    def finger_position(self) -> float:
        start, goal, started = self._finger
        progress = 1.0 if self.finger_travel_s <= 0 else min(1.0, (time.monotonic() - started) / self.finger_travel_s)
        return start + (goal - start) * progress

    def move_fingers(self, goal: float) -> None:
        self._finger = (self.finger_position(), goal, time.monotonic())

    def robot_set_motor_registers(self, cmd_type: str, name: str, reg: str, value: int) -> None:
        self.registers[reg] = int(value)
        self.register_writes.append((reg, int(value)))

    def robot_set_operating_modes(self, cmd_type, name, mode, profile_type="velocity", profile_velocity=0,
                                  profile_acceleration=0) -> None:
        self.registers.update(Profile_Velocity=int(profile_velocity), Profile_Acceleration=int(profile_acceleration))

    def robot_reboot_motors(self, cmd_type: str, name: str, enable: bool, smart_reboot: bool = False) -> None:
        self.reboots.append((cmd_type, name, enable, smart_reboot))
        if name == "arm":
            self.registers = {"Profile_Velocity": 0, "Profile_Acceleration": 0}  # RAM registers back to defaults


class FakeXSArm:
    """InterbotixArmXSInterface stand-in with the SDK's order of operations: joint speeds are checked
    against the moving time already set, and only then is the new moving time applied (registers written
    only when it changes); refusals show only in the return value and `warnings`. `stalled` mimics an
    overloaded motor (commands accepted, encoders do not move); a reachable sphere stands in for IK."""

    reach_m = 0.55

    def __init__(self, core: FakeXSCore, moving_time: float, accel_time: float) -> None:
        self.core = core
        self.group_name = "arm"
        self.group_info = SimpleNamespace(joint_names=list(WIDOWX_JOINTS), num_joints=6,
                                          joint_velocity_limits=[VELOCITY_LIMIT] * 6,
                                          joint_lower_limits=[-np.pi] * 6, joint_upper_limits=[np.pi] * 6)
        self.moving_time: float | None = None
        self.accel_time: float | None = None
        self.joint_commands = list(core.arm_joints)
        self.ik_fail_next = 0
        self.stalled = False
        self.calls: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.unprofiled_moves = 0  # moves made while the profile registers were at their reboot defaults
        self.set_trajectory_time(moving_time, accel_time)

    def set_trajectory_time(self, moving_time=None, accel_time=None) -> None:
        if moving_time is not None and moving_time != self.moving_time:
            self.moving_time = moving_time
            self.core.robot_set_motor_registers("group", self.group_name, "Profile_Velocity", int(moving_time * 1000))
        if accel_time is not None and accel_time != self.accel_time:
            self.accel_time = accel_time
            self.core.robot_set_motor_registers("group", self.group_name, "Profile_Acceleration", int(accel_time * 1000))

    def _check_joint_limits(self, positions) -> bool:
        theta = [int(p * 1000) / 1000.0 for p in positions]
        for x in range(6):
            if not self.group_info.joint_lower_limits[x] <= theta[x] <= self.group_info.joint_upper_limits[x]:
                self.warnings.append(f"Would exceed position limits on joint {x}.")
                return False
            if abs(theta[x] - self.joint_commands[x]) / float(self.moving_time) > self.group_info.joint_velocity_limits[x]:
                self.warnings.append(f"Would exceed velocity limits on joint {x}.")
                return False
        return True

    def _publish(self, positions, moving_time, accel_time, blocking) -> None:
        self.set_trajectory_time(moving_time, accel_time)
        self.joint_commands = list(positions)
        if self.core.registers["Profile_Velocity"] == 0:
            self.unprofiled_moves += 1
        if not self.stalled:
            self.core.arm_joints = list(positions)
        if blocking:
            time.sleep(self.moving_time)

    def set_ee_pose_matrix(self, T_sd, custom_guess=None, execute=True, moving_time=None, accel_time=None, blocking=True):
        self.calls.append({"T": np.array(T_sd), "custom_guess": custom_guess, "moving_time": moving_time,
                           "accel_time": accel_time, "blocking": blocking})
        theta = list(fake_ik(np.asarray(T_sd)))
        if self.ik_fail_next > 0 or np.linalg.norm(np.asarray(T_sd)[:3, 3]) > self.reach_m:
            self.ik_fail_next = max(0, self.ik_fail_next - 1)
            return theta, False
        if not self._check_joint_limits(theta):
            return theta, False
        if execute:
            self._publish(theta, moving_time, accel_time, blocking)
        return theta, True

    def set_joint_positions(self, joint_positions, moving_time=None, accel_time=None, blocking=True) -> bool:
        self.calls.append({"joints": list(joint_positions), "moving_time": moving_time, "blocking": blocking})
        if not self._check_joint_limits(joint_positions):
            return False
        self._publish(list(joint_positions), moving_time, accel_time, blocking)
        return True

    def get_ee_pose(self):
        return fake_fk(self.core.arm_joints)  # forward kinematics of the measured joints, as the SDK does

    def capture_joint_positions(self) -> None:
        self.calls.append({"capture": True})
        self.joint_commands = list(self.core.arm_joints)

    def get_joint_commands(self):
        return list(self.joint_commands)


class FakeXSGripper:
    """PWM gripper: open/close (ROS1) or release/grasp (ROS2) start the fingers, which take `travel_s`;
    `delay` only makes the call sleep, as the SDK does."""

    def __init__(self, core: FakeXSCore, ros2: bool) -> None:
        self.core = core
        self.calls: list[str] = []
        if ros2:
            self.release = lambda delay=1.0: self._set("release", 0.037, delay)
            self.grasp = lambda delay=1.0: self._set("grasp", 0.015, delay)
        else:
            self.open = lambda delay=1.0: self._set("open", 0.037, delay)
            self.close = lambda delay=1.0: self._set("close", 0.015, delay)

    def _set(self, call: str, finger: float, delay: float) -> None:
        self.calls.append(call)
        self.core.move_fingers(finger)
        time.sleep(delay)


class InterbotixException(Exception):
    """interbotix_common_modules.common_robot.exceptions.InterbotixException."""


def install_interbotix(monkeypatch, ros2: bool, time_scale: float = 1.0, finger_travel_s: float = 1.0) -> dict[str, Any]:
    """Put fake Interbotix modules on sys.modules; returns a registry with the created bots.

    ROS1 bots hold the core as `dxl`, ROS2 bots as `core` (both: `bot.arm.core`). ROS2's module-level
    state is modelled: one global node per process (a second raises InterbotixException), startup once,
    and `robot_shutdown()` leaves both flags set. With `registry["xs_sdk"] = False` the core blocks while
    waiting for services (ROS2, until `registry["release"]` is set) or exits the process (ROS1's sys.exit(1)).
    `time_scale` speeds the arm up for tests: velocity limits x scale, finger travel / scale (a test then
    uses moving times / scale and sees the same accept/refuse decisions as at real speed).
    """
    import robots.widowx

    monkeypatch.setattr(robots.widowx, "_BOTS", {})  # the driver keeps bots per process
    registry: dict[str, Any] = {"bots": [], "startups": 0, "shutdowns": 0, "xs_sdk": True,
                                "release": threading.Event(), "global_node": False, "up": False}

    def make_core():
        if not registry["xs_sdk"]:
            if ros2:
                while not registry["release"].wait(0.05):  # "Failed to find services ..." forever
                    pass
                raise RuntimeError("rclpy shut down")
            time.sleep(0.05)  # rospy.wait_for_service(timeout=5.0) in the real core
            sys.exit(1)
        if ros2:
            if registry["global_node"]:
                raise InterbotixException("Tried to create an Interbotix global node but one already exists.")
            registry["global_node"] = True
        return FakeXSCore(finger_travel_s / time_scale)

    class InterbotixManipulatorXS:
        def __init__(self, robot_model, group_name="arm", gripper_name="gripper", robot_name=None, moving_time=2.0,
                     accel_time=0.3, gripper_pressure=0.5, gripper_pressure_lower_limit=150,
                     gripper_pressure_upper_limit=350, **kwargs) -> None:
            self.robot_model = robot_model
            core = make_core()
            if ros2:
                self.core = core
            else:
                self.dxl = core
            self.arm = FakeXSArm(core, moving_time, accel_time)
            self.arm.group_info.joint_velocity_limits = [VELOCITY_LIMIT * time_scale] * 6
            self.gripper = FakeXSGripper(core, ros2)
            registry["bots"].append(self)

    for name in [k for k in sys.modules if k.startswith(("interbotix_xs_modules", "interbotix_common_modules"))]:
        monkeypatch.delitem(sys.modules, name)
    package = types.ModuleType("interbotix_xs_modules")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "interbotix_xs_modules", package)
    if ros2:
        sub = types.ModuleType("interbotix_xs_modules.xs_robot")
        sub.__path__ = []
        arm = types.ModuleType("interbotix_xs_modules.xs_robot.arm")
        arm.InterbotixManipulatorXS = InterbotixManipulatorXS
        common = types.ModuleType("interbotix_common_modules")
        common.__path__ = []
        common_robot = types.ModuleType("interbotix_common_modules.common_robot")
        common_robot.__path__ = []
        startup = types.ModuleType("interbotix_common_modules.common_robot.robot")

        def robot_startup(node=None, node_name="interbotix_robot_manipulation", namespace=None) -> None:
            if registry["up"]:
                raise InterbotixException("Startup has already been requested.")
            registry["up"] = True
            registry["startups"] += 1

        def robot_shutdown(node=None) -> None:
            registry["shutdowns"] += 1  # rclpy.shutdown(); the global node and the "up" flag stay set

        startup.robot_startup, startup.robot_shutdown = robot_startup, robot_shutdown
        for name, module in [("interbotix_xs_modules.xs_robot", sub), ("interbotix_xs_modules.xs_robot.arm", arm),
                             ("interbotix_common_modules", common), ("interbotix_common_modules.common_robot", common_robot),
                             ("interbotix_common_modules.common_robot.robot", startup)]:
            monkeypatch.setitem(sys.modules, name, module)
    else:
        arm = types.ModuleType("interbotix_xs_modules.arm")
        arm.InterbotixManipulatorXS = InterbotixManipulatorXS
        monkeypatch.setitem(sys.modules, "interbotix_xs_modules.arm", arm)
    return registry


# ----------------------------------------------------------------------------------------------- franky
class FakeFrankaArm:
    """franky.Robot stand-in: async moves jump to the target; errors surface at the next poll_motion.

    As in franky, `stop()` preempts a running asynchronous motion and the next `move`/`poll_motion`/
    `join_motion` re-raises "libfranka: Move command preempted!"; `effective_factors` records the product of
    the robot's and the motion's velocity factors (franky multiplies them)."""

    def __init__(self, fci_hostname: str, relative_dynamics_factor=1.0, default_torque_threshold=20.0,
                 default_force_threshold=30.0, controller_mode=None, realtime_config=None, **kalman: Any) -> None:
        import franky

        self.franky = franky
        self.fci_hostname = fci_hostname
        self.relative_dynamics_factor = relative_dynamics_factor
        self.realtime_config = realtime_config
        self._pose = franky.Affine(np.array([0.45, 0.05, 0.2]), np.array([1.0, 0.0, 0.0, 0.0]))
        self.moves: list[tuple[Any, bool]] = []
        self.pending_error: BaseException | None = None
        self.has_errors = False
        self.recover_calls = 0
        self.stops = 0
        self.loads: list[tuple] = []
        self.reflex_next_move = False
        self.running = False  # an asynchronous motion is in progress
        self.effective_factors: list[float] = []

    @staticmethod
    def _velocity(factor) -> float:
        return float(factor) if isinstance(factor, (int, float)) else float(factor.velocity)

    def _raise_pending(self) -> None:
        if self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            raise error

    @property
    def current_cartesian_state(self):
        return self.franky.CartesianState(self.franky.RobotPose(self._pose))

    def move(self, motion, asynchronous: bool = False, limit_rate: bool = False, cutoff_frequency: float = 100.0) -> None:
        self._raise_pending()
        if self.has_errors:
            raise self.franky.ControlException("robot is in reflex mode; call recover_from_errors")
        self.moves.append((motion, asynchronous))
        self.effective_factors.append(self._velocity(self.relative_dynamics_factor)
                                      * self._velocity(motion.relative_dynamics_factor))
        self.running = asynchronous
        if self.reflex_next_move:  # the control thread faults while executing this motion
            self.reflex_next_move = False
            self.pending_error = self.franky.ControlException("cartesian_motion_generator_joint_acceleration_discontinuity")
            self.has_errors = True
            return
        self._pose = motion.target.pose.end_effector_pose

    def poll_motion(self) -> bool:
        self._raise_pending()
        return False

    def join_motion(self, timeout=None) -> bool:
        self.running = False
        self._raise_pending()
        return True

    def recover_from_errors(self) -> bool:
        self.recover_calls += 1
        self.has_errors = False
        return True

    def stop(self) -> None:
        self.stops += 1
        if self.running:
            self.running = False
            self.pending_error = self.franky.ControlException("libfranka: Move command preempted!")

    def set_load(self, load_mass, F_x_Cload, load_inertia) -> None:
        self.loads.append((load_mass, list(F_x_Cload), list(load_inertia)))

    def set_ee(self, NE_T_EE) -> None:
        assert len(NE_T_EE) == 16
        self.ee = list(NE_T_EE)


class FakeRobotiqGripper:
    """pyrobotiqgripper.RobotiqGripper stand-in with a Modbus-like 16 ms round trip per call.

    Modelled from pyrobotiqgripper 3.3: a powered-up gripper is not activated and `move` raises
    GripperNotActivatedError; `activate(reset=True)` (the default) resets and re-activates with a full
    open/close stroke even when already active, `activate(reset=False)` strokes only when not active;
    a blocking fault (gFLT in GFLT_BLOCKING) raises GripperFaultError at every status read until a
    reset + activation clears it; fingers travel for `travel_s` over the full 0..255 range."""

    round_trip_s = 0.016
    travel_s = 0.0
    powered_up_active = False  # a gripper activated earlier in this power cycle stays active

    def __init__(self, com_port: str = "auto", device_id: int = 9, connection_type: str = "RTU",
                 tcp_host: str = "127.0.0.1", tcp_port: int = 54321, baudrate=115200, debug: bool = False, **kwargs) -> None:
        self.com_port, self.device_id, self.baudrate = com_port, device_id, baudrate
        self._motion = (0.0, 0.0, 0.0)  # (from, to, start time) in bits
        self.moves: list[tuple[int, int, int, bool]] = []
        self.activated = self.powered_up_active
        self.strokes = 0  # full open/close activation strokes
        self.fault = 0  # gFLT
        self.fail_next = 0
        self.disconnected = False

    def _modbus(self) -> None:
        time.sleep(self.round_trip_s)
        if self.fail_next > 0:
            self.fail_next -= 1
            from pyrobotiqgripper.exceptions import GripperCommunicationError

            raise GripperCommunicationError("Read failed (Modbus timeout)")

    def _read_status(self, raise_on_fault: bool = True) -> None:
        from pyrobotiqgripper.constants import GFLT_BLOCKING, REGISTER_DIC
        from pyrobotiqgripper.exceptions import GripperFaultError

        self._modbus()
        if raise_on_fault and self.fault in GFLT_BLOCKING:
            raise GripperFaultError(REGISTER_DIC["gFLT"][self.fault], code=self.fault)

    def _bits(self) -> float:
        start, goal, started = self._motion
        span = abs(goal - start) / 255.0 * self.travel_s
        progress = 1.0 if span <= 0 else min(1.0, (time.monotonic() - started) / span)
        return start + (goal - start) * progress

    def activate(self, reset=True, start=True, refreshStatus=True) -> None:
        if reset:
            self._modbus()
            self.activated = False
            self.fault = 0
        self._read_status(raise_on_fault=False)
        if not self.activated:
            self.strokes += 1
            time.sleep(self.travel_s * 2)  # full open and close
            self._motion = (0.0, 0.0, time.monotonic())
            self.activated = True

    def move(self, position, speed=255, force=255, wait=True, readStatus=True, refreshStatus=False, start=False) -> None:
        from pyrobotiqgripper.exceptions import GripperNotActivatedError

        if not self.activated:
            raise GripperNotActivatedError()
        self._modbus()
        self.moves.append((int(position), int(speed), int(force), bool(wait)))
        self._motion = (self._bits(), float(position), time.monotonic())
        if readStatus:
            self._read_status()

    def position(self, refreshStatus=True):
        if refreshStatus:
            self._read_status()
        return int(round(self._bits()))

    def disconnect(self) -> None:
        self.disconnected = True


# ------------------------------------------------------------------------------------------ pyrealsense2
class FakeRealSense:
    """A pyrealsense2 module stand-in: context/config/pipeline/frames with device timestamps in ms."""

    def __init__(self, serials: list[str], height: int = 480, width: int = 640) -> None:
        self.camera_info = SimpleNamespace(serial_number="serial_number")
        self.stream = SimpleNamespace(color="color")
        self.format = SimpleNamespace(bgr8="bgr8")
        self.option = SimpleNamespace(enable_auto_exposure="enable_auto_exposure", exposure="exposure",
                                      enable_auto_white_balance="enable_auto_white_balance", white_balance="white_balance")
        self.serials = serials
        self.shape = (height, width)
        self.options: dict[str, dict[str, float]] = {}
        self.enabled: list[tuple] = []
        self.frozen = False  # the stream keeps delivering the same frame
        self.timeout_next = 0
        self.device_clock_ms = 1_000_000.0
        fake = self

        class Device:
            def __init__(self, serial: str) -> None:
                self.serial = serial

            def get_info(self, info) -> str:
                return self.serial

        class Context:
            @property
            def devices(self):
                return [Device(s) for s in fake.serials]

        class Config:
            def enable_device(self, serial: str) -> None:
                self.serial = serial

            def enable_stream(self, stream_type, width, height, format, framerate) -> None:  # noqa: A002 - SDK name
                fake.enabled.append((stream_type, width, height, format, framerate))

        class Sensor:
            def __init__(self, serial: str) -> None:
                self.serial = serial

            def set_option(self, option, value) -> None:
                fake.options.setdefault(self.serial, {})[option] = value

        class Frame:
            def __init__(self, number: int, stamp_ms: float) -> None:
                self.number, self.stamp_ms = number, stamp_ms

            def __bool__(self) -> bool:
                return True

            def get_timestamp(self) -> float:
                return self.stamp_ms

            def get_frame_number(self) -> int:
                return self.number

            def get_data(self):
                image = np.zeros((*fake.shape, 3), dtype=np.uint8)
                image[..., 0] = 255  # pure blue in BGR
                return image

        class Pipeline:
            def __init__(self) -> None:
                self.number = 0
                self.started = False

            def start(self, config):
                self.started = True
                serial = config.serial
                return SimpleNamespace(get_device=lambda: SimpleNamespace(first_color_sensor=lambda: Sensor(serial)))

            def stop(self) -> None:
                self.started = False

            def wait_for_frames(self, timeout_ms: int = 5000):
                if fake.timeout_next > 0:
                    fake.timeout_next -= 1
                    raise RuntimeError(f"Frame didn't arrive within {timeout_ms}")
                if not fake.frozen:
                    self.number += 1
                    fake.device_clock_ms += 33.3
                number, stamp = self.number, fake.device_clock_ms
                return SimpleNamespace(get_color_frame=lambda: Frame(number, stamp))

        self.context, self.config, self.pipeline = Context, Config, Pipeline


# ------------------------------------------------------------------------------------------------ OpenCV
class FakeVideoCapture:
    """cv2.VideoCapture stand-in whose `read()` can block, as a V4L2 read does (up to 10 s) when frames stop."""

    def __init__(self, device, api_preference=None) -> None:
        self.device = device
        self.opened = True
        self.blocked = threading.Event()  # set: read() blocks until `release_block` is called
        self._unblock = threading.Event()
        self.reads = 0
        self.props: dict[int, float] = {}

    def isOpened(self) -> bool:
        return self.opened

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def read(self, image=None):
        if self.blocked.is_set():
            self._unblock.wait()
            self._unblock.clear()
        self.reads += 1
        frame = np.zeros((48, 64, 3), dtype=np.uint8)
        frame[..., 2] = 200  # red in BGR
        return True, frame

    def release_block(self) -> None:
        self.blocked.clear()
        self._unblock.set()

    def release(self) -> None:
        self.opened = False
