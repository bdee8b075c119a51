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
class FakeXSCore:
    def __init__(self) -> None:
        names = [*WIDOWX_JOINTS, "gripper", "left_finger", "right_finger"]
        self.js_index_map = {n: i for i, n in enumerate(names)}
        self.joint_states = SimpleNamespace(name=names, position=[0.0] * len(names))
        self.js_mutex = threading.Lock()
        self.reboots: list[tuple] = []

    def robot_reboot_motors(self, cmd_type: str, name: str, enable: bool, smart_reboot: bool = False) -> None:
        self.reboots.append((cmd_type, name, enable, smart_reboot))


class FakeXSArm:
    """Kinematics stand-in: a reachable sphere instead of IK; `stalled` mimics an overloaded motor."""

    reach_m = 0.55

    def __init__(self, core: FakeXSCore, moving_time: float, accel_time: float) -> None:
        self.core = core
        self.moving_time, self.accel_time = moving_time, accel_time
        self.group_info = SimpleNamespace(joint_names=list(WIDOWX_JOINTS), num_joints=6)
        self.T_sb = np.eye(4)
        self.T_sb[:3, :3] = DOWN
        self.T_sb[:3, 3] = (0.2, 0.0, 0.05)
        self.joint_commands = [0.0] * 6
        self.ik_fail_next = 0
        self.stalled = False
        self.calls: list[dict[str, Any]] = []

    def set_ee_pose_matrix(self, T_sd, custom_guess=None, execute=True, moving_time=None, accel_time=None, blocking=True):
        self.calls.append({"T": np.array(T_sd), "custom_guess": custom_guess, "moving_time": moving_time,
                           "accel_time": accel_time, "blocking": blocking})
        theta = list(np.asarray(T_sd)[:3, 3]) + [0.0, 0.0, 0.0]
        if self.ik_fail_next > 0 or np.linalg.norm(np.asarray(T_sd)[:3, 3]) > self.reach_m:
            self.ik_fail_next = max(0, self.ik_fail_next - 1)
            return theta, False
        if execute:
            if not self.stalled:
                self.T_sb = np.array(T_sd, dtype=float)
                self.joint_commands = theta
            if blocking:
                time.sleep(moving_time if moving_time is not None else self.moving_time)
        return theta, True

    def set_joint_positions(self, joint_positions, moving_time=None, accel_time=None, blocking=True) -> bool:
        self.calls.append({"joints": list(joint_positions), "moving_time": moving_time, "blocking": blocking})
        if list(joint_positions)[:3] == [-0.1319, -0.7624, 0.4449]:  # BridgeData neutral: FK stand-in
            self.T_sb[:3, 3] = (0.25, 0.0, 0.2)
        self.joint_commands = list(joint_positions)
        return True

    def get_ee_pose(self):
        return self.T_sb.copy()

    def capture_joint_positions(self) -> None:
        self.calls.append({"capture": True})

    def get_joint_commands(self):
        return list(self.joint_commands)


class FakeXSGripper:
    def __init__(self, core: FakeXSCore, ros2: bool) -> None:
        self.core = core
        self.calls: list[str] = []
        if ros2:
            self.release = lambda delay=1.0: self._set("release", 0.037)
            self.grasp = lambda delay=1.0: self._set("grasp", 0.015)
        else:
            self.open = lambda delay=1.0: self._set("open", 0.037)
            self.close = lambda delay=1.0: self._set("close", 0.015)

    def _set(self, call: str, finger: float) -> None:
        self.calls.append(call)
        self.core.joint_states.position[self.core.js_index_map["left_finger"]] = finger


def install_interbotix(monkeypatch, ros2: bool) -> dict[str, Any]:
    """Put fake Interbotix modules on sys.modules; returns a registry with the created bots."""
    registry: dict[str, Any] = {"bots": [], "startups": 0, "shutdowns": 0}

    class InterbotixManipulatorXS:
        def __init__(self, robot_model, group_name="arm", gripper_name="gripper", robot_name=None, moving_time=2.0,
                     accel_time=0.3, gripper_pressure=0.5, gripper_pressure_lower_limit=150,
                     gripper_pressure_upper_limit=350, **kwargs) -> None:
            self.robot_model = robot_model
            self.core = FakeXSCore()
            self.arm = FakeXSArm(self.core, moving_time, accel_time)
            self.gripper = FakeXSGripper(self.core, ros2)
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

        def robot_startup(node=None) -> None:
            registry["startups"] += 1

        def robot_shutdown(node=None) -> None:
            registry["shutdowns"] += 1

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
    """franky.Robot stand-in: async moves jump to the target; errors surface at the next poll_motion."""

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

    @property
    def current_cartesian_state(self):
        return self.franky.CartesianState(self.franky.RobotPose(self._pose))

    def move(self, motion, asynchronous: bool = False, limit_rate: bool = False, cutoff_frequency: float = 100.0) -> None:
        if self.has_errors:
            raise self.franky.ControlException("robot is in reflex mode; call recover_from_errors")
        self.moves.append((motion, asynchronous))
        if self.reflex_next_move:  # the control thread faults while executing this motion
            self.reflex_next_move = False
            self.pending_error = self.franky.ControlException("cartesian_motion_generator_joint_acceleration_discontinuity")
            self.has_errors = True
            return
        self._pose = motion.target.pose.end_effector_pose

    def poll_motion(self) -> bool:
        if self.pending_error is not None:
            error, self.pending_error = self.pending_error, None
            raise error
        return False

    def join_motion(self, timeout=None) -> bool:
        return self.poll_motion()

    def recover_from_errors(self) -> bool:
        self.recover_calls += 1
        self.has_errors = False
        return True

    def stop(self) -> None:
        self.stops += 1

    def set_load(self, load_mass, F_x_Cload, load_inertia) -> None:
        self.loads.append((load_mass, list(F_x_Cload), list(load_inertia)))

    def set_ee(self, NE_T_EE) -> None:
        assert len(NE_T_EE) == 16
        self.ee = list(NE_T_EE)


class FakeRobotiqGripper:
    """pyrobotiqgripper.RobotiqGripper stand-in with a Modbus-like 16 ms round trip per call."""

    round_trip_s = 0.016

    def __init__(self, com_port: str = "auto", device_id: int = 9, connection_type: str = "RTU",
                 tcp_host: str = "127.0.0.1", tcp_port: int = 54321, baudrate=115200, debug: bool = False, **kwargs) -> None:
        self.com_port, self.device_id, self.baudrate = com_port, device_id, baudrate
        self._position = 0
        self.moves: list[tuple[int, int, int, bool]] = []
        self.activated = False
        self.fail_next = 0
        self.disconnected = False

    def _modbus(self) -> None:
        time.sleep(self.round_trip_s)
        if self.fail_next > 0:
            self.fail_next -= 1
            raise OSError("Modbus timeout")

    def activate(self, reset=True, start=True, refreshStatus=True) -> None:
        self._modbus()
        self.activated = True

    def move(self, position, speed=255, force=255, wait=True, readStatus=True, refreshStatus=False, start=False) -> None:
        self._modbus()
        self.moves.append((int(position), int(speed), int(force), bool(wait)))
        self._position = int(position)

    def position(self, refreshStatus=True):
        self._modbus()
        return self._position

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

            def enable_stream(self, stream, width, height, fmt, fps) -> None:
                fake.enabled.append((stream, width, height, fmt, fps))

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
