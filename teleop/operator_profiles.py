"""Graded simulated operators: the sim's scripted expert driven the way a better, okay or worse human drives.

The paper's robomimic experiment mixes demos from operators of graded skill (robomimic MH: better, okay,
worse), and Re-Mix should weight the better ones up. These profiles make such data in the sim: each step
the scripted expert proposes an action and the profile turns it into what this operator sends:

- action noise: Gaussian jitter on the translation, proportional to the move (motor noise grows with speed);
- hesitation: pauses of a few steps (zero motion) before carrying on;
- detours: a few steps toward a random direction, then the expert corrects from wherever the hand is;
- failed grasps: the gripper closes too early, above the cube; the expert sees nothing is held and
  approaches again (the retry is part of the demo, as in human data);
- junk: uniformly random actions, the expert ignored, kept after a random length (a domain Re-Mix should
  drop).

The recorded action is the one sent (what this operator did), so a worse operator's demos are worse
demonstrations, not clean labels. The expert is closed loop, so every disturbance is recovered from and
demos still end in task success (junk excepted). A profile is seeded, so a collection is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from remix.common.errors import ConfigError
from robots.robot import Observation
from teleop.device import TeleopCommand, TeleopDevice, TeleopEvent, hold_action


@dataclass(frozen=True)
class OperatorProfile:
    """How an operator deviates from the scripted expert; probabilities are per control step."""

    name: str
    noise: float = 0.0  # std of the jitter on each translation axis, as a fraction of the move's length
    hesitation: float = 0.0  # chance per step of starting a pause
    hesitation_steps: tuple[int, int] = (1, 3)  # pause length range (inclusive)
    detour: float = 0.0  # chance per step of starting a detour
    detour_steps: tuple[int, int] = (2, 4)
    detour_size: float = 0.6  # detour speed, as a fraction of the step limit
    failed_grasp: float = 0.0  # chance that a grasp closes too early (above the cube) and is retried
    random_actions: bool = False  # junk: random actions, the expert ignored
    junk_steps: tuple[int, int] = (10, 30)  # junk demo length range (kept after this many steps)

    def __post_init__(self) -> None:
        for key in ("noise", "hesitation", "detour", "failed_grasp", "detour_size"):
            if getattr(self, key) < 0:
                raise ConfigError(f"operator profile {self.name!r}: {key} must be >= 0")
        for key in ("hesitation", "detour", "failed_grasp"):
            if getattr(self, key) > 1:
                raise ConfigError(f"operator profile {self.name!r}: {key} is a probability, at most 1")
        for key in ("hesitation_steps", "detour_steps", "junk_steps"):
            low, high = getattr(self, key)
            if not 1 <= low <= high:
                raise ConfigError(f"operator profile {self.name!r}: {key} must be a range 1 <= low <= high")


PROFILES: dict[str, OperatorProfile] = {
    profile.name: profile
    for profile in (
        OperatorProfile("expert"),
        OperatorProfile("better", noise=0.05, hesitation=0.02),
        OperatorProfile("okay", noise=0.2, hesitation=0.08, detour=0.06, failed_grasp=0.3),
        OperatorProfile("worse", noise=0.4, hesitation=0.15, detour=0.15, failed_grasp=0.6, hesitation_steps=(2, 5)),
        OperatorProfile("junk", random_actions=True),
    )
}


def get_profile(name: str) -> OperatorProfile:
    """The built-in profile called `name`; the error lists the choices."""
    if name not in PROFILES:
        raise ConfigError(f"unknown operator profile {name!r}; use teleop.profile={'|'.join(PROFILES)}")
    return PROFILES[name]


class ProfiledActions:
    """Turns the expert's proposed action into this operator's action, step by step (see the module docstring)."""

    GRASP_MISS_LIFT = 0.025  # m the hand rises before the premature close

    def __init__(self, profile: OperatorProfile, max_translation: float, max_rotation: float, seed: int = 0) -> None:
        self.profile = profile
        self.max_translation = max_translation
        self.max_rotation = max_rotation
        self.rng = np.random.default_rng(seed)
        self.begin_episode()

    def begin_episode(self) -> None:
        self._script: list[np.ndarray] = []  # queued actions of a running hesitation / detour / failed grasp
        self.events = {"hesitation": 0, "detour": 0, "failed_grasp": 0}

    def act(self, proposal: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The action this operator sends when the expert proposes `proposal` in measured `state`."""
        p, rng = self.profile, self.rng
        proposal = np.asarray(proposal, dtype=np.float64)
        gripper_open = float(state[6]) > 0.5
        if not self._script:
            if p.failed_grasp and gripper_open and proposal[6] < 0.5 and rng.random() < p.failed_grasp:
                self._script = self._failed_grasp()
            elif p.hesitation and rng.random() < p.hesitation:
                self.events["hesitation"] += 1
                self._script = [hold_action(proposal[6]) for _ in range(int(rng.integers(
                    p.hesitation_steps[0], p.hesitation_steps[1] + 1)))]
            elif p.detour and rng.random() < p.detour:
                self._script = self._detour(proposal[6])
        action = self._script.pop(0) if self._script else proposal.copy()
        if p.noise:  # motor noise grows with the speed of the move: fine moves near the cube stay fine
            action[:3] += rng.normal(0.0, p.noise * float(np.linalg.norm(proposal[:3])), 3)
        action[:3] = np.clip(action[:3], -self.max_translation, self.max_translation)
        action[3:6] = np.clip(action[3:6], -self.max_rotation, self.max_rotation)
        return action

    def _detour(self, gripper: float) -> list[np.ndarray]:
        self.events["detour"] += 1
        direction = self.rng.normal(size=3)
        direction[2] = abs(direction[2])  # detours go sideways or up, never into the table
        step = direction / np.linalg.norm(direction) * self.profile.detour_size * self.max_translation
        low, high = self.profile.detour_steps
        return [np.array([*step, 0.0, 0.0, 0.0, gripper]) for _ in range(int(self.rng.integers(low, high + 1)))]

    def _failed_grasp(self) -> list[np.ndarray]:
        """Rise a little with the gripper open, then close on nothing; the expert then re-approaches."""
        self.events["failed_grasp"] += 1
        rise = np.array([0.0, 0.0, self.GRASP_MISS_LIFT, 0.0, 0.0, 0.0, 1.0])
        close = hold_action(0.0)
        return [rise, close.copy(), close.copy()]

    def random_action(self, gripper: float) -> np.ndarray:
        """Junk: a uniformly random move; the gripper toggles now and then."""
        action = np.zeros(7)
        action[:3] = self.rng.uniform(-1.0, 1.0, 3) * self.max_translation
        action[5] = self.rng.uniform(-1.0, 1.0) * self.max_rotation
        action[6] = 1.0 - gripper if self.rng.random() < 0.1 else gripper
        return action


class ProfiledExpertTeleop(TeleopDevice):
    """`teleop=sim_expert teleop.profile=NAME`: the sim expert device driven through an operator profile.

    Wraps the plain expert device (which decides when a demo is done: on task success); junk operators
    are kept after a random number of steps instead.
    """

    def __init__(self, expert: TeleopDevice, profile: OperatorProfile, max_translation: float,
                 max_rotation: float, seed: int = 0) -> None:
        self.expert = expert
        self.name = expert.name
        self.actions = ProfiledActions(profile, max_translation, max_rotation, seed)
        self._steps = 0
        self._length = 0
        self._gripper = 1.0

    @property
    def profile(self) -> OperatorProfile:
        return self.actions.profile

    @property
    def keys(self) -> frozenset[str]:
        return self.expert.keys

    def start(self) -> None:
        self.expert.start()

    def stop(self) -> None:
        self.expert.stop()

    def begin_episode(self, observation: Observation) -> None:
        self.expert.begin_episode(observation)
        self.actions.begin_episode()
        self._steps = 0
        self._gripper = float(observation.state[6])
        low, high = self.profile.junk_steps
        self._length = int(self.actions.rng.integers(low, high + 1))

    def command(self, observation: Observation, keys: Sequence[str] = ()) -> TeleopCommand:
        self._steps += 1
        if self.profile.random_actions:
            if self._steps > self._length:
                return TeleopCommand(hold_action(self._gripper), engaged=False, event=TeleopEvent.KEEP)
            return TeleopCommand(self.actions.random_action(self._gripper), engaged=True)
        command = self.expert.command(observation, keys)
        if command.event is not None or not command.engaged:
            return command
        return replace(command, action=self.actions.act(command.action, observation.state))

    def applied(self, action: np.ndarray) -> None:
        self._gripper = float(action[6])
        self.expert.applied(action)
