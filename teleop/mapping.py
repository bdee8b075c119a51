"""Quest controller -> robot action: dead-man switch, origins on press, frame rotation, gains, limits.

DROID's scheme, made rate-independent: while the grip button (dead-man) is held, the robot should be
at `robot origin + gain * (controller - controller origin)`, with the controller motion rotated from the
headset frame (x right, y up, z toward the user) into the robot base frame. Each step the action is
the difference between that desired pose and the pose commanded so far, norm-limited per step. The
commanded pose is tracked from the actions the robot reports as applied, so the same mapping drives
the blocking WidowX (one move per step, however long it takes) and the 10 Hz Franka alike, and a
clipped step is simply caught up on the next one. Releasing the grip holds the robot still; pressing
it again takes new origins (clutching). Buttons act on their press (rising edge) only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from remix.common.errors import ConfigError
from robots.geometry import euler_to_matrix, matrix_to_euler
from teleop.device import TeleopCommand, TeleopEvent, hold_action
from teleop.protocol import ControllerReading
from teleop.rotations import from_rotvec, is_rotation, to_rotvec

# Operator standing behind the robot, facing the same way as its base x axis:
# base x (forward) = -headset z, base y (left) = -headset x, base z (up) = headset y.
BEHIND_ROBOT = ((0.0, 0.0, -1.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


@dataclass(frozen=True)
class MappingConfig:
    """How controller motion and buttons become robot actions (configs/teleop/oculus.yaml)."""

    base_from_headset: Sequence[Sequence[float]] = BEHIND_ROBOT  # rotation: headset-frame vector -> base frame
    position_gain: float = 1.0
    rotation_gain: float = 1.0
    max_step_translation: float = 0.02  # m per step (the robot's own limit also applies)
    max_step_rotation: float = 0.15  # rad per step
    enable_rotation: bool = True
    controller: str = "r"  # "r" or "l"
    deadman_button: str = "RG"
    trigger: str = "rightTrig"
    gripper_close_above: float = 0.5  # trigger value beyond which the gripper closes
    keep_button: str = "A"
    discard_button: str = "B"
    rerecord_button: str = "RJ"

    def __post_init__(self) -> None:
        rotation = np.asarray(self.base_from_headset, dtype=np.float64)
        if rotation.shape != (3, 3) or not np.all(np.isfinite(rotation)) or not is_rotation(rotation, 1e-3):
            raise ConfigError(
                "teleop base_from_headset must be a 3x3 rotation matrix (orthonormal rows, det +1); "
                f"got {rotation.tolist()}"
            )
        for name in ("position_gain", "rotation_gain", "max_step_translation", "max_step_rotation"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"teleop {name} must be a positive number, got {value}")
        if self.controller not in ("r", "l"):
            raise ConfigError(f"teleop controller must be 'r' or 'l', got {self.controller!r}")
        if not 0.0 < self.gripper_close_above < 1.0:
            raise ConfigError(f"teleop gripper_close_above must be in (0, 1), got {self.gripper_close_above}")
        buttons = [self.deadman_button, self.keep_button, self.discard_button, self.rerecord_button]
        if len(set(buttons)) != len(buttons):
            raise ConfigError(f"teleop buttons must all differ (dead-man, keep, discard, re-record), got {buttons}")

    @property
    def rotation(self) -> np.ndarray:
        return np.asarray(self.base_from_headset, dtype=np.float64)


def limit_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    """Scale `vector` down to length `limit` if longer (keeps the direction, unlike per-axis clipping)."""
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector


class ControllerMapper:
    """Stateful mapping for one episode; see the module docstring."""

    def __init__(self, config: MappingConfig, robot_max_translation: float, robot_max_rotation: float) -> None:
        self.config = config
        self.max_translation = min(config.max_step_translation, robot_max_translation)
        self.max_rotation = min(config.max_step_rotation, robot_max_rotation)
        self._rotation = config.rotation
        self._position = np.zeros(3)
        self._orientation = np.eye(3)
        self._gripper = 1.0
        self._controller_origin: np.ndarray | None = None
        self._robot_origin: tuple[np.ndarray, np.ndarray] | None = None
        self._previous_pressed: frozenset[str] | None = None
        self._last_command: np.ndarray | None = None  # what was asked this step, to spot robot-side clipping

    @property
    def engaged(self) -> bool:
        return self._controller_origin is not None

    def reset(self, state: np.ndarray) -> None:
        """Start an episode from the robot state (x, y, z, roll, pitch, yaw, gripper)."""
        state = np.asarray(state, dtype=np.float64)
        self._position = state[:3].copy()
        self._orientation = euler_to_matrix(state[3:6])
        self._gripper = float(state[6])
        self._controller_origin = None
        self._robot_origin = None
        self._last_command = None
        self._previous_pressed = None  # buttons held through the reset do not fire

    def applied(self, action: np.ndarray) -> None:
        """Advance the commanded pose by what the robot applied.

        When the robot did less than asked (workspace wall, skipped IK step), the robot origin moves by
        the shortfall: the arm then follows the hand from where it really is, so pulling the hand back
        from a wall moves the arm at once instead of after a dead zone.
        """
        action = np.asarray(action, dtype=np.float64)
        applied_rotation = euler_to_matrix(action[3:6])
        self._position = self._position + action[:3]
        self._orientation = applied_rotation @ self._orientation
        self._gripper = float(action[6])
        asked, self._last_command = self._last_command, None
        if asked is None or self._robot_origin is None:
            return
        origin_position, origin_orientation = self._robot_origin
        shortfall_rotation = applied_rotation @ euler_to_matrix(asked[3:6]).T
        self._robot_origin = (origin_position + action[:3] - asked[:3], shortfall_rotation @ origin_orientation)

    def _event(self, held: frozenset[str], tapped: frozenset[str]) -> TeleopEvent | None:
        previous, self._previous_pressed = self._previous_pressed, held
        if previous is None:
            return None
        new = (held | tapped) - previous
        c = self.config
        for button, event in ((c.keep_button, TeleopEvent.KEEP), (c.discard_button, TeleopEvent.DISCARD),
                              (c.rerecord_button, TeleopEvent.RERECORD)):
            if button in new:
                return event
        return None

    def step(self, reading: ControllerReading | None, tapped: frozenset[str] = frozenset()) -> TeleopCommand:
        """The action for the newest reading; None means the headset is lost (hold, re-take origins later).

        `tapped`: buttons pressed in any frame since the previous step (a tap shorter than a control
        period is an event too); `reading.pressed` is what is held now.
        """
        if reading is None:
            self._controller_origin = None
            self._previous_pressed = None
            return TeleopCommand(hold_action(self._gripper), engaged=False, connected=False)
        event = self._event(reading.pressed, tapped)
        pose = reading.poses.get(self.config.controller)
        if pose is None or not reading.is_pressed(self.config.deadman_button):
            self._controller_origin = None  # released (or controller untracked): hold; origins again on press
            return TeleopCommand(hold_action(self._gripper), engaged=False, event=event)
        if self._controller_origin is None:
            self._controller_origin = np.array(pose, dtype=np.float64)
            self._robot_origin = (self._position.copy(), self._orientation.copy())
        assert self._robot_origin is not None
        self._last_command = self._action_towards(pose, reading)
        return TeleopCommand(self._last_command.copy(), engaged=True, event=event)

    def _action_towards(self, pose: np.ndarray, reading: ControllerReading) -> np.ndarray:
        c = self.config
        origin = self._controller_origin
        robot_position, robot_orientation = self._robot_origin  # type: ignore[misc]
        moved = self._rotation @ (pose[:3, 3] - origin[:3, 3])  # type: ignore[index]
        desired_position = robot_position + c.position_gain * moved
        translation = limit_norm(desired_position - self._position, self.max_translation)
        rotation_delta = np.zeros(3)
        if c.enable_rotation:
            turned = pose[:3, :3] @ origin[:3, :3].T  # type: ignore[index]
            turned_in_base = self._rotation @ turned @ self._rotation.T
            desired = from_rotvec(to_rotvec(turned_in_base) * c.rotation_gain) @ robot_orientation
            step = limit_norm(to_rotvec(desired @ self._orientation.T), self.max_rotation)
            rotation_delta = matrix_to_euler(from_rotvec(step))
        closed = reading.value(c.trigger) > c.gripper_close_above
        gripper = 0.0 if closed else 1.0
        return np.concatenate([translation, rotation_delta, [gripper]])
