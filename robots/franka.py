"""Franka Panda (or FR3) through franky at 10 Hz, with a Robotiq 2F-85 on its own thread.

Rate control: the loop adds each base-frame delta to the *commanded* target and sends an asynchronous
absolute `CartesianMotion`, which preempts the running one and replans, so `send_action` returns at
once. Errors raised in franky's control thread (reflexes such as
cartesian_motion_generator_joint_acceleration_discontinuity) surface at the next `poll_motion()`;
they are recovered with `recover_from_errors()`, the target is re-read from the arm, and the step
raises RobotFault so the trial is scored "robot fault", not failure. Start with low dynamics
(`dynamics`), raise them once the setup is proven.

franky must match the arm's server version (see docs/robots.md): franky-control 2.x bundles libfranka
0.21 for an FR3 (system >= 5.9); an original Panda (system 4.2.x) needs the libfranka 0.9.x build.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from remix.common.errors import ConfigError, HardwareError
from robots.cameras import make_cameras
from robots.geometry import euler_to_matrix, matrix_to_euler, matrix_to_quat_xyzw, quat_xyzw_to_matrix
from robots.robot import ArmFault, ArmRobot
from robots.robotiq import RobotiqWorker
from robots.safety import Pose, SafetyLimits

log = logging.getLogger("robots.franka")

PANDA_GRIPPER_DOWN = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))
INSTALL_HINT = ("install franky with `pip install franky-control` (x86_64 Linux) built for your arm's libfranka: "
                "2.x for an FR3 (system >= 5.9), the libfranka 0.9.x build for a Panda (system 4.2.x); see docs/robots.md")


def import_franky() -> Any:
    try:
        import franky
    except ImportError as error:
        raise HardwareError(f"the Franka backend needs franky ({error}); {INSTALL_HINT}") from None
    return franky


def franky_errors(franky: Any) -> tuple[type[BaseException], ...]:
    """Every exception class franky exports. In franky 1.x they derive from builtins.Exception, not from
    franky.Exception (2.0 fixed that for libfranka's, but franky's own, e.g. MotionReuseException,
    still do not), so `except franky.Exception` lets a reflex escape."""
    return tuple(v for v in vars(franky).values() if isinstance(v, type) and issubclass(v, BaseException)
                 and v.__module__.startswith("franky"))


def is_preemption(error: BaseException) -> bool:
    """franky re-raises "libfranka: Move command preempted!" after Robot.stop() at the next move/poll."""
    return "preempted" in str(error).lower()


class FrankaRobot(ArmRobot):
    """Franka Panda + Robotiq 2F-85, rate mode at 10 Hz by default."""

    def __init__(self, fci_host: str = "172.16.0.2", name: str = "franka", control_hz: float = 10.0,
                 workspace_low: Sequence[float] = (0.3, -0.3, 0.02), workspace_high: Sequence[float] = (0.75, 0.3, 0.5),
                 max_translation: float = 0.03, max_rotation: float = 0.15, watchdog_periods: float = 2.0,
                 safe_height: float | None = 0.3, home: Sequence[float] = (0.5, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0),
                 down_rotation: Sequence[Sequence[float]] = PANDA_GRIPPER_DOWN,
                 dynamics: Mapping[str, float] | None = None, reset_dynamics: Mapping[str, float] | None = None,
                 realtime: bool = True, load: Mapping[str, Any] | None = None,
                 ee_transform: Sequence[float] | None = None,
                 gripper: Mapping[str, Any] | None = None, cameras: Mapping[str, Sequence[int]] | None = None,
                 camera_devices: Mapping[str, Mapping[str, Any]] | None = None,
                 camera_retries: int = 2, robot_factory: Any = None, gripper_factory: Any = None) -> None:
        limits = SafetyLimits(tuple(workspace_low), tuple(workspace_high), max_translation, max_rotation,  # type: ignore[arg-type]
                              watchdog_periods, safe_height)
        super().__init__(name, "rate", control_hz, limits, Pose.from_state(home), make_cameras(cameras, camera_devices), camera_retries)
        self.fci_host = fci_host
        self.down = np.asarray(down_rotation, dtype=np.float64)
        if self.down.shape != (3, 3) or not np.allclose(self.down @ self.down.T, np.eye(3), atol=1e-6):
            raise ConfigError("franka down_rotation must be a 3x3 rotation matrix")
        self.dynamics = self._dynamics(dynamics or {"velocity": 0.5, "acceleration": 0.1, "jerk": 0.1})
        self.reset_dynamics = self._dynamics(reset_dynamics or {"velocity": 0.2, "acceleration": 0.1, "jerk": 0.1})
        self.realtime = bool(realtime)
        self.load = dict(load) if load else None
        if ee_transform is not None and len(ee_transform) != 16:
            raise ConfigError("franka ee_transform must be 16 numbers (NE_T_EE, column-major 4x4) or null")
        self.ee_transform = [float(v) for v in ee_transform] if ee_transform is not None else None
        gripper_settings = dict(gripper or {})
        if gripper_factory is not None:
            gripper_settings["factory"] = gripper_factory
        self.gripper = RobotiqWorker(**gripper_settings) if gripper is not None or gripper_factory is not None else None
        self._robot_factory = robot_factory
        self.franky: Any = None
        self.arm: Any = None
        self._errors: tuple[type[BaseException], ...] = ()
        self._stop_pending = False  # Robot.stop() left a "preempted" exception for the next move/poll
        self.recoveries = 0

    @staticmethod
    def _dynamics(values: Mapping[str, float]) -> tuple[float, float, float]:
        try:
            triple = (float(values["velocity"]), float(values["acceleration"]), float(values["jerk"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError("franka dynamics must be {velocity, acceleration, jerk}, each in (0, 1]") from None
        if not all(0 < v <= 1 for v in triple):
            raise ConfigError(f"franka dynamics factors must be in (0, 1], got {list(triple)}")
        return triple

    def _factor(self, triple: tuple[float, float, float]) -> Any:
        return self.franky.RelativeDynamicsFactor(velocity=triple[0], acceleration=triple[1], jerk=triple[2])

    def _affine(self, pose: Pose) -> Any:
        rotation = euler_to_matrix(np.asarray(pose.euler)) @ self.down
        return self.franky.Affine(np.asarray(pose.position, dtype=np.float64), matrix_to_quat_xyzw(rotation))

    def _motion(self, pose: Pose, triple: tuple[float, float, float]) -> Any:
        # motions are single-use in franky 2.x: build a fresh one for every command
        return self.franky.CartesianMotion(self._affine(pose), self.franky.ReferenceType.Absolute,
                                           relative_dynamics_factor=self._factor(triple))

    # -------------------------------------------------------------------------------------------- hooks
    def _connect(self) -> None:
        self.franky = franky = import_franky()
        self._errors = franky_errors(franky)
        factory = self._robot_factory or franky.Robot
        realtime = franky.RealtimeConfig.Enforce if self.realtime else franky.RealtimeConfig.Ignore
        try:
            # franky multiplies the robot's and each motion's dynamics factors: the factors live on the motions
            # only (dynamics per step, reset_dynamics for resets), the robot's stays at 1.
            self.arm = factory(self.fci_host, relative_dynamics_factor=1.0, realtime_config=realtime)
        except franky.IncompatibleVersionException as error:
            raise HardwareError(f"franky/libfranka does not match the arm's server version ({error}); {INSTALL_HINT}") from None
        except franky.RealtimeException as error:
            raise HardwareError(f"no realtime priority ({error}); run on a PREEMPT_RT kernel or set robot.realtime=false") from None
        except Exception as error:
            raise HardwareError(f"cannot connect to the Franka at {self.fci_host} ({error}); activate FCI in Desk and use "
                                "the FCI IP (not the Desk/shop-floor IP)") from None
        self._stop_pending = False
        self.arm.recover_from_errors()
        if self.load is not None:
            self.arm.set_load(float(self.load["mass"]), list(self.load["center_of_mass"]),
                              list(self.load.get("inertia", [0.001, 0, 0, 0, 0.001, 0, 0, 0, 0.001])))
        if self.ee_transform is not None:
            self.arm.set_ee(self.ee_transform)
        if self.gripper is not None:
            self.gripper.start()

    def _disconnect(self) -> None:
        if self.gripper is not None:
            self.gripper.close()
        self.arm = None

    def _read_pose(self) -> Pose:
        if self.arm is None:
            return self.home
        try:
            affine = self.arm.current_cartesian_state.pose.end_effector_pose
        except (*self._errors, RuntimeError) as error:  # libfranka's NetworkException can arrive as RuntimeError
            raise HardwareError(f"lost the Franka's state stream ({error}); check the FCI cable/switch, that no other "
                                "client holds the arm, and the realtime settings (robot.realtime)") from None
        rotation = quat_xyzw_to_matrix(np.asarray(affine.quaternion)) @ self.down.T
        opening = self.gripper.opening if self.gripper is not None else 1.0
        return Pose.from_arrays(np.asarray(affine.translation), matrix_to_euler(rotation), opening)

    def _settle_stop(self) -> None:
        """Consume the "Move command preempted" exception that Robot.stop() leaves behind, so the next
        move does not re-raise it as a fault; any other stored error is a real fault."""
        if not self._stop_pending:
            return
        self._stop_pending = False
        try:
            if not self.arm.join_motion(timeout=1.0):
                log.warning("franka: the motion was still running 1 s after stop()")
        except self._errors as error:
            if not is_preemption(error):
                raise ArmFault(f"franka control error: {error}") from error

    def _poll(self) -> None:
        """Surface errors from franky's control thread (and the gripper thread) as ArmFault."""
        self._settle_stop()
        try:
            self.arm.poll_motion()
        except self._errors as error:
            raise ArmFault(f"franka control error: {error}") from error
        if self.arm.has_errors:
            raise ArmFault("franka reports errors (reflex)")
        if self.gripper is not None:
            try:
                self.gripper.check()
            except HardwareError as error:
                raise ArmFault(str(error)) from error

    def _move(self, target: Pose, triple: tuple[float, float, float], asynchronous: bool, what: str) -> None:
        """One motion; a preemption left by a racing stop() is consumed (and the move dropped if stopped)."""
        for attempt in range(2):
            try:
                self.arm.move(self._motion(target, triple), asynchronous=asynchronous)
                return
            except self._errors as error:
                if isinstance(error, self.franky.RealtimeException):  # libfranka <= 0.15 reports it here
                    raise HardwareError(f"no realtime priority ({error}); run on a PREEMPT_RT kernel or set "
                                        "robot.realtime=false") from None
                if not is_preemption(error) or attempt:
                    raise ArmFault(f"franka {what}: {error}") from error
                self._stop_pending = False
                if self.stopped:  # an operator stop raced with this command: drop it
                    return

    def _command(self, target: Pose) -> bool:
        self._poll()
        if self.gripper is not None:
            self.gripper.command(target.gripper)
        self._move(target, self.dynamics, True, "rejected the motion")
        return True

    def _move_to(self, target: Pose) -> bool:
        self._settle_stop()
        if self.gripper is not None:
            self.gripper.command(target.gripper)
        self._move(target, self.reset_dynamics, False, "reset motion failed")
        return True

    def _hold(self) -> None:
        if self.arm is None:
            return
        try:
            self.arm.stop()
        except Exception as error:  # stopping an idle arm may raise; holding is what matters
            log.debug("franka stop: %s", error)
        self._stop_pending = True

    def _clear_halt(self) -> None:
        if self.arm is not None:
            try:
                self._settle_stop()
            except ArmFault as fault:
                self._recover_fault(fault)

    def _recover(self, fault: ArmFault) -> None:
        self._hold()
        try:
            self._settle_stop()
        except ArmFault:
            pass  # the fault being recovered from
        if not self.arm.recover_from_errors():
            raise HardwareError("recover_from_errors() failed; release the e-stop / check Desk")
        self.recoveries += 1
