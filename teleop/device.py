"""The one interface every teleop input implements (Quest controller, keyboard).

A device turns what the operator does into the robot's 7-d base-frame delta action each control step,
and reports episode events (keep / discard / re-record). The collection loop feeds back the action
the robot actually applied (after its clipping), so a device can track the commanded pose itself and
never accumulate drift against clipped or skipped steps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from robots.robot import Observation


class TeleopEvent(str, Enum):
    KEEP = "keep"  # the demo is done and good: store it
    DISCARD = "discard"  # the demo is done and bad: drop it, reset, next attempt
    RERECORD = "rerecord"  # start this demo over now: drop what was recorded, reset


@dataclass(frozen=True)
class TeleopCommand:
    """One control step's worth of operator intent."""

    action: np.ndarray  # (7,) dx dy dz droll dpitch dyaw (base frame) + gripper in [0, 1] (1 = open)
    engaged: bool  # the operator is driving (dead-man held / motion key pressed); idle steps are not recorded
    event: TeleopEvent | None = None
    connected: bool = True  # the input is alive (False: headset data is stale; the action holds still)
    # what the demo records for this step when it differs from what is executed: DART (noise-injected
    # execution) sends `action` (the expert's plus noise) and records the expert's clean action here
    label: np.ndarray | None = None


def hold_action(gripper: float) -> np.ndarray:
    """Zero motion, gripper unchanged: what a disengaged or disconnected device sends."""
    return np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, gripper], dtype=np.float64)


class TeleopDevice(ABC):
    """Operator input for `remix-collect`; a context manager (start/stop)."""

    name: str = "teleop"

    def start(self) -> None:  # noqa: B027 - optional hook
        """Open the device (connect the headset, ...); errors say what to fix."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release the device."""

    @property
    def keys(self) -> frozenset[str]:
        """Operator keys this device reacts to (they must not double as stop keys)."""
        return frozenset()

    def __enter__(self) -> TeleopDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @abstractmethod
    def begin_episode(self, observation: Observation) -> None:
        """The robot was reset: forget origins and button history, start from this state."""

    @abstractmethod
    def command(self, observation: Observation, keys: Sequence[str] = ()) -> TeleopCommand:
        """The action for this step; `keys` are operator key presses since the last step."""

    @abstractmethod
    def applied(self, action: np.ndarray) -> None:
        """The action the robot really applied this step (after clipping); None-free, (7,)."""


@dataclass(frozen=True)
class EventKeys:
    """Keyboard keys for the episode events, honoured by every device (the headset's buttons too)."""

    keep: str = "1"
    discard: str = "2"
    rerecord: str = "3"

    @property
    def all(self) -> frozenset[str]:
        return frozenset((self.keep, self.discard, self.rerecord))

    def event(self, keys: Sequence[str]) -> TeleopEvent | None:
        for key in keys:
            for name, event in (("keep", TeleopEvent.KEEP), ("discard", TeleopEvent.DISCARD),
                                ("rerecord", TeleopEvent.RERECORD)):
                if key == getattr(self, name):
                    return event
        return None


DEFAULT_EVENT_KEYS = EventKeys()
