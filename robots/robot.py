"""The one robot interface every part codes against (contract in docs/contracts.md).

A `Robot` is a context manager. Actions are 7-d end-effector deltas in the base frame (xyz in m, extrinsic
xyz euler in rad, gripper in [0, 1] with 1 = open), the same for every arm. `ArmRobot`, the base of local backends, owns the
safety layer (per-step clipping, workspace box, NaN/inf rejection, rate-mode watchdog, stop, safe reset)
and fault handling, so a backend only implements a few hooks (`_read_pose`, `_command`, `_hold`,
`_halt`, `_move_to`, ...) and cannot bypass the limits.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from remix.common.errors import ConfigError, HardwareError, RemixError
from robots.cameras import Camera, CameraTimeout
from robots.geometry import rotation_delta_euler
from robots.safety import (
    Pose,
    SafetyLimits,
    SpeedLimiter,
    Watchdog,
    safe_reset_waypoints,
    sanitize_action,
    step_target,
)

log = logging.getLogger("robots")

STATE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
GRIPPER_INDEX = 6


class ControlMode(str, Enum):
    BLOCKING = "blocking"  # send_action returns when the move is done (WidowX)
    RATE = "rate"  # send_action returns at once; the loop keeps the rate (Franka, 10 Hz)


@dataclass(frozen=True)
class Observation:
    images: dict[str, np.ndarray]  # uint8 HxWx3 per camera
    state: np.ndarray  # float32 (7,): x, y, z, roll, pitch, yaw, gripper (1 = open)
    timestamps: dict[str, float] = field(default_factory=dict)  # capture time per camera and "state" (time.time()); optional: policies ignore it


@dataclass(frozen=True)
class ActionSpec:
    """Shape, names and per-step bounds of an action; `low`/`high` are what `send_action` clips to."""

    max_translation: float
    max_rotation: float
    names: tuple[str, ...] = ACTION_NAMES
    gripper_index: int = GRIPPER_INDEX

    @property
    def shape(self) -> tuple[int]:
        return (len(self.names),)

    @property
    def low(self) -> np.ndarray:
        return np.array([-self.max_translation] * 3 + [-self.max_rotation] * 3 + [0.0], dtype=np.float32)

    @property
    def high(self) -> np.ndarray:
        return np.array([self.max_translation] * 3 + [self.max_rotation] * 3 + [1.0], dtype=np.float32)


@dataclass(frozen=True)
class ObservationSpec:
    """Cameras as {name: (height, width)} (uint8 RGB) and the names of the (7,) float32 state."""

    cameras: Mapping[str, tuple[int, int]]
    state_names: tuple[str, ...] = STATE_NAMES

    @property
    def state_shape(self) -> tuple[int]:
        return (len(self.state_names),)


class RobotFault(RemixError):
    """The arm faulted (reflex, motor overload, camera loss) and was recovered: score the trial "robot fault"."""

    def __init__(self, message: str, kind: str = "arm") -> None:
        super().__init__(message)
        self.kind = kind


class ArmFault(Exception):
    """Raised by backend hooks for a recoverable arm fault; the base class recovers and raises RobotFault."""


@dataclass
class SafetyEvents:
    """What the safety layer did, for logs and trial reports (a counter never resets while connected)."""

    clipped: int = 0
    rejected_nonfinite: int = 0
    ik_failures: int = 0
    watchdog_trips: int = 0
    stops: int = 0
    faults: int = 0
    camera_retries: int = 0
    messages: list[str] = field(default_factory=list)

    def note(self, message: str, level: int = logging.WARNING) -> None:
        log.log(level, message)
        self.messages.append(message)
        del self.messages[:-100]


class Robot(ABC):
    """The interface loops code against (teleop, eval, goal capture). See docs/contracts.md.

    Local arms derive from `ArmRobot`, which adds the safety layer; `RemoteRobot` forwards every call
    to a robot server, where the safety layer runs next to the arm.
    """

    name: str
    control_mode: ControlMode
    control_hz: float
    action_spec: ActionSpec
    observation_spec: ObservationSpec
    limits: SafetyLimits  # workspace box and per-step limits the safety layer enforces
    events: SafetyEvents

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_hz

    @abstractmethod
    def connect(self) -> None:
        """Open the hardware/sim/server connection; idempotent."""

    @abstractmethod
    def disconnect(self) -> None:
        """Hold the arm and release everything; idempotent."""

    @abstractmethod
    def reset(self, seed: int | None = None) -> Observation:
        """Safe reset to home (sim: a fresh scene from `seed`); clears a stop."""

    @abstractmethod
    def get_observation(self) -> Observation:
        """Images per camera, (7,) float32 state, capture timestamps."""

    @abstractmethod
    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Apply a 7-d base-frame EE delta (gripper absolute, 1 = open); returns the applied action."""

    @abstractmethod
    def stop(self) -> None:
        """Operator stop: halt motion at once; actions are held until `reset()` or `resume()`."""

    @abstractmethod
    def resume(self) -> None:
        """Accept actions again after a stop, from the current pose."""

    @property
    @abstractmethod
    def connected(self) -> bool: ...

    @property
    @abstractmethod
    def stopped(self) -> bool: ...

    def check_success(self) -> bool | None:
        """The task's success predicate on simulated robots; None on real robots (the operator labels)."""
        return None


class ArmRobot(Robot):
    """Base of every local backend: owns the safety layer; subclasses implement the hooks only."""

    def __init__(self, name: str, control_mode: ControlMode | str, control_hz: float, limits: SafetyLimits,
                 home: Pose, cameras: Mapping[str, Camera] | None = None, camera_retries: int = 2,
                 camera_timeout_s: float = 1.0) -> None:
        try:
            self.control_mode = ControlMode(control_mode)
        except ValueError:
            raise ConfigError(f"robot control_mode {control_mode!r} is unknown; use 'blocking' or 'rate'") from None
        if not control_hz or control_hz <= 0:
            raise ConfigError(f"robot control_hz must be positive, got {control_hz}")
        if not limits.contains(home.position):
            raise ConfigError(f"robot home position {list(home.position)} is outside its workspace; fix home or the workspace")
        self.name = name
        self.control_hz = float(control_hz)
        self.limits = limits
        self.home = home
        self.cameras: dict[str, Camera] = dict(cameras or {})
        self.camera_retries = int(camera_retries)
        self.camera_timeout_s = float(camera_timeout_s)
        self.action_spec = ActionSpec(limits.max_translation, limits.max_rotation)
        self.observation_spec = ObservationSpec({n: c.shape for n, c in self.cameras.items()})
        self.events = SafetyEvents()
        self._lock = threading.RLock()
        self._connected = False
        self._stopped = False
        self._target: Pose = home
        self._watchdog: Watchdog | None = None
        self._speed = SpeedLimiter(limits, self.control_hz, self._motion_clock)  # per unit time, however often called

    # ----------------------------------------------------------------------------------------- lifecycle
    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def stopped(self) -> bool:
        """True after `stop()` until `reset()` or `resume()`; actions are held meanwhile."""
        return self._stopped

    @property
    def target(self) -> Pose:
        """The commanded target pose that the next delta is applied to."""
        return self._target

    def connect(self) -> None:
        if self._connected:
            return
        started: list[Camera] = []
        try:
            self._connect()
            for camera in self.cameras.values():
                camera.start()
                started.append(camera)
            self._target = self._measured_pose()
        except BaseException:
            for camera in started:
                camera.stop()
            self._disconnect()
            raise
        self._connected = True
        if self.control_mode is ControlMode.RATE:
            self._watchdog = Watchdog(self.limits.watchdog_periods * self.period_s, self._on_watchdog)
            self._watchdog.start()

    def disconnect(self) -> None:
        if not self._connected:
            return
        self._connected = False
        if self._watchdog is not None:
            self._watchdog.close()
            self._watchdog = None
        try:
            with self._lock:
                self._hold()
        except Exception as error:  # still release everything below
            log.warning("%s: hold on disconnect failed: %s", self.name, error)
        finally:
            for camera in self.cameras.values():
                camera.stop()
            self._disconnect()

    def _require_connected(self) -> None:
        if not self._connected:
            raise RemixError(f"robot {self.name!r} is not connected; use it as a context manager (with make_robot(cfg) as robot)")

    # ------------------------------------------------------------------------------------------ public API
    def reset(self, seed: int | None = None) -> Observation:
        """Safe reset: halt, open the gripper, lift, travel above home, descend; clears a stop.

        `seed` picks the randomized initial scene on simulated robots (ignored on real arms).
        """
        self._require_connected()
        if self._watchdog is not None:
            self._watchdog.disarm()
        self._halt()
        with self._lock:
            self._clear_halt()
            try:
                self._reset(seed)
            except ArmFault as fault:  # recover and try once more; a second fault is the trial's robot fault
                self._recover_fault(fault)
                try:
                    self._reset(seed)
                except ArmFault as again:
                    self._recover_fault(again)
                    raise RobotFault(f"{self.name}: reset failed twice ({again}); the arm holds where it is") from None
            self._target = self._measured_pose()
            self._speed.reset()
            self._stopped = False
        return self.get_observation()

    def get_observation(self) -> Observation:
        self._require_connected()
        self._before_observation()
        images: dict[str, np.ndarray] = {}
        stamps: dict[str, float] = {}
        for name, camera in self.cameras.items():
            frame = self._read_camera(camera)
            images[name] = frame.image
            stamps[name] = frame.capture_time
        with self._lock:
            pose = self._read_pose()
        stamps["state"] = time.time()
        return Observation(images=images, state=pose.as_state(), timestamps=stamps)

    def send_action(self, action: np.ndarray) -> np.ndarray:
        """Apply a 7-d base-frame delta; returns the action actually applied (after clipping) as float32."""
        self._require_connected()
        raw = np.asarray(action, dtype=np.float64).reshape(-1)
        if raw.shape != (7,):
            raise ValueError(f"robot action must have 7 values (dx, dy, dz, droll, dpitch, dyaw, gripper), got shape {np.shape(action)}")
        if self._stopped:  # halted by the operator: nothing moves, so there is nothing to watch
            return self._hold_action()
        if self._watchdog is not None:
            self._watchdog.feed()
        delta = sanitize_action(raw, self.limits)
        if delta is None:
            self.events.rejected_nonfinite += 1
            self.events.note(f"{self.name}: rejected non-finite action {raw.tolist()}; holding pose")
            with self._lock:
                self._hold()
            return self._hold_action()
        with self._lock:
            if self._stopped:  # stop() raced with this call
                return self._hold_action()
            previous = self._target
            delta = self._speed.limit(delta)
            target = self._constrain_target(step_target(previous, delta, self.limits))
            try:
                reached = self._command(target)
            except ArmFault as fault:
                self._recover_fault(fault)
                raise RobotFault(f"{self.name}: arm fault ({fault}) recovered; the arm holds at its current pose") from None
            if not reached:
                self.events.ik_failures += 1
                self.events.note(f"{self.name}: no IK solution for target {np.round(target.position, 4).tolist()}; command skipped")
                return self._hold_action()
            self._target = target
        applied = delta.copy()
        applied[:3] = np.asarray(target.position) - np.asarray(previous.position)
        applied[3:6] = rotation_delta_euler(np.asarray(previous.euler), np.asarray(target.euler))
        if float(np.max(np.abs(applied - raw))) > 1e-9:
            self.events.clipped += 1
        return applied.astype(np.float32)

    def stop(self) -> None:
        self._stopped = True
        if self._watchdog is not None:
            self._watchdog.disarm()
        self.events.stops += 1
        self.events.note(f"{self.name}: stop requested; motion halted", level=logging.INFO)
        if self._connected:
            self._halt()

    def resume(self) -> None:
        with self._lock:
            self._clear_halt()
            self._target = self._measured_pose()
            self._speed.reset()
            self._stopped = False

    # ------------------------------------------------------------------------------------------- internals
    def _hold_action(self) -> np.ndarray:
        return np.array([0, 0, 0, 0, 0, 0, self._target.gripper], dtype=np.float32)

    def _on_watchdog(self) -> None:
        self.events.watchdog_trips += 1
        self.events.note(f"{self.name}: no action within {self.limits.watchdog_periods:g} periods; stopping and holding")
        with self._lock:
            self._hold()
            pose = self._read_pose()
            if np.all(np.isfinite(pose.as_state())):  # else keep the last target; the next command reports it
                self._target = pose.replace(gripper=self._target.gripper)

    def _read_camera(self, camera: Camera):  # -> Frame
        last: CameraTimeout | None = None
        for attempt in range(self.camera_retries + 1):
            try:
                return camera.read(self.camera_timeout_s)
            except CameraTimeout as error:
                last = error
                if attempt < self.camera_retries:
                    self.events.camera_retries += 1
                    self.events.note(f"{self.name}: {error}; retrying")
        self.events.faults += 1
        raise RobotFault(f"{self.name}: camera {camera.name!r} gave no fresh frame after {self.camera_retries + 1} tries ({last})",
                         kind="camera")

    def _measured_pose(self) -> Pose:
        """The measured pose, refusing a non-finite one (it would become the next target)."""
        pose = self._read_pose()
        if not np.all(np.isfinite(pose.as_state())):
            raise HardwareError(f"{self.name}: the arm reports a non-finite pose {pose.as_state().tolist()}; check the "
                                "arm's state/calibration and restart")
        return pose

    def _recover_fault(self, fault: ArmFault) -> None:
        """Recover the arm and re-read the target from it; HardwareError when recovery itself fails."""
        self.events.faults += 1
        self.events.note(f"{self.name}: arm fault: {fault}; recovering")
        try:
            self._recover(fault)
            self._target = self._measured_pose()
        except Exception as error:
            raise HardwareError(f"{self.name}: could not recover from arm fault ({fault}): {error}; check the arm and its "
                                "e-stop, then restart") from error

    def _reset(self, seed: int | None) -> None:
        """Default safe reset: blocking moves through lift / above-home / home waypoints."""
        for waypoint in safe_reset_waypoints(self._read_pose(), self.home, self.limits):
            if not self._move_to(waypoint):
                raise HardwareError(f"{self.name}: reset waypoint {list(waypoint.position)} is unreachable; "
                                    "move the arm by hand near home and retry")

    def _constrain_target(self, target: Pose) -> Pose:
        """Project a target onto what the backend can reach (e.g. a top-down sim gripper keeps yaw only)."""
        return target

    def _motion_clock(self) -> float:
        """Seconds on the clock the arm moves by (the speed limit's time base); simulators count simulated time."""
        return time.monotonic()

    def _before_observation(self) -> None:  # noqa: B027 - optional hook
        """Hook run before images are read (fault injection in the mock)."""

    # ----------------------------------------------------------------------------------------- backend hooks
    @abstractmethod
    def _connect(self) -> None:
        """Open the SDK connection (lazy SDK imports live here)."""

    @abstractmethod
    def _disconnect(self) -> None:
        """Release the SDK; must be safe to call after a failed `_connect`."""

    @abstractmethod
    def _read_pose(self) -> Pose:
        """Measured end-effector pose and gripper opening (1 = open)."""

    @abstractmethod
    def _command(self, target: Pose) -> bool:
        """Send a target pose (blocking or asynchronous per control mode); False = no IK solution (skipped).

        Raise ArmFault for a recoverable fault."""

    @abstractmethod
    def _move_to(self, target: Pose) -> bool:
        """Blocking, slow move used by reset; False = unreachable."""

    @abstractmethod
    def _hold(self) -> None:
        """Stop where the arm is and keep holding (watchdog, NaN)."""

    def _halt(self) -> None:
        """Operator stop, called from another thread while a command may be running: it must not wait
        for that command (no lock) and must end a blocking move early. Default: `_hold()`."""
        self._hold()

    def _clear_halt(self) -> None:  # noqa: B027 - optional hook
        """Undo what `_halt` latched (reset/resume)."""

    def _recover(self, fault: ArmFault) -> None:
        """Clear the fault so the arm accepts commands again (reflex recovery, motor reboot)."""
        raise fault


def make_robot(cfg: Any) -> Robot:
    """Build the robot named by a hydra config with `_target_` (configs/robot/<name>.yaml)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, Mapping) or "_target_" not in cfg:
        raise ConfigError("robot config needs a _target_; choose one with robot=mock|sim|widowx|franka|remote")
    try:
        # not recursive: nested `_target_`s (cameras) are built by the robot itself, with their names
        robot = instantiate(dict(cfg), _convert_="all", _recursive_=False)
    except InstantiationException as error:
        cause: BaseException = error
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, RemixError):
            raise cause from None
        detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        raise ConfigError(f"cannot build robot {cfg['_target_']}: {detail}; check the robot config keys") from None
    if not isinstance(robot, Robot):
        raise ConfigError(f"robot config _target_ {cfg['_target_']} does not build a robots.robot.Robot")
    return robot
