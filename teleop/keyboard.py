"""Keyboard teleop, for machines without a headset: each key press moves the arm one fixed step.

Keys come from `remix.common.operator_input` (never stdin directly), so CI scripts them and the terminal input
serves people. Motion is in the robot base frame; a key press engages the step it arrives in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from remix.common.errors import ConfigError
from robots.robot import ActionSpec, Observation
from teleop.device import DEFAULT_EVENT_KEYS, EventKeys, TeleopCommand, TeleopDevice, hold_action
from teleop.mapping import limit_norm

# (action dim, sign) per motion key: i/k x, j/l y, u/o z, r/f roll, t/g pitch, y/h yaw.
DEFAULT_BINDINGS = {
    "i": (0, 1), "k": (0, -1), "j": (1, 1), "l": (1, -1), "u": (2, 1), "o": (2, -1),
    "r": (3, 1), "f": (3, -1), "t": (4, 1), "g": (4, -1), "y": (5, 1), "h": (5, -1),
}


@dataclass(frozen=True)
class KeyboardConfig:
    step_translation: float = 0.01  # m per key press
    step_rotation: float = 0.05  # rad per key press
    gripper_toggle: str = "c"
    bindings: tuple[tuple[str, int, int], ...] = tuple((k, d, s) for k, (d, s) in DEFAULT_BINDINGS.items())

    def __post_init__(self) -> None:
        if not (self.step_translation > 0 and self.step_rotation > 0):
            raise ConfigError("keyboard step_translation and step_rotation must be positive")
        keys = [key for key, _, _ in self.bindings] + [self.gripper_toggle]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"keyboard keys must all differ, got {keys}")
        for key, dim, sign in self.bindings:
            if dim not in range(6) or sign not in (-1, 1):
                raise ConfigError(f"keyboard binding {key!r}: dim must be 0..5 and sign +-1, got {dim}, {sign}")


class KeyboardTeleop(TeleopDevice):
    """Base-frame steps from key presses; the gripper toggles; 1/2/3 keep / discard / re-record."""

    name = "keyboard"

    def __init__(self, config: KeyboardConfig, action_spec: ActionSpec, event_keys: EventKeys = DEFAULT_EVENT_KEYS) -> None:
        clash = event_keys.all & (
            {key for key, _, _ in config.bindings} | {config.gripper_toggle})
        if clash:
            raise ConfigError(f"keyboard keys {sorted(clash)} are bound to both motion and episode events")
        self.config = config
        self.event_keys = event_keys
        self.max_translation = action_spec.max_translation
        self.max_rotation = action_spec.max_rotation
        self._bindings = {key: (dim, sign) for key, dim, sign in config.bindings}
        self._gripper = 1.0

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self._bindings) | {self.config.gripper_toggle} | self.event_keys.all

    def begin_episode(self, observation: Observation) -> None:
        self._gripper = float(observation.state[6])

    def command(self, observation: Observation, keys: Sequence[str] = ()) -> TeleopCommand:
        action = hold_action(self._gripper)
        engaged = False
        for key in keys:
            if key in self._bindings:
                dim, sign = self._bindings[key]
                action[dim] += sign * (self.config.step_translation if dim < 3 else self.config.step_rotation)
                engaged = True
            elif key == self.config.gripper_toggle:
                action[6] = 0.0 if action[6] > 0.5 else 1.0
                engaged = True
        action[:3] = limit_norm(action[:3], self.max_translation)
        action[3:6] = np.clip(action[3:6], -self.max_rotation, self.max_rotation)
        return TeleopCommand(action, engaged=engaged, event=self.event_keys.event(keys))

    def applied(self, action: np.ndarray) -> None:
        self._gripper = float(action[6])
