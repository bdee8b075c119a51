"""A teleop device that drives a simulated robot with its scripted expert.

It stands in for the operator when collecting co-training demos in simulation: every step sends the
sim's `expert_action()`, and the demo is kept as soon as the task's success predicate fires (the collect
loop's step limit handles an expert that gets stuck). The demos are therefore task successes, unlike a
scripted headset replaying fixed hand motions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from remix.common.errors import ConfigError
from robots.robot import Observation, Robot
from robots.sim_interface import SimulatedRobot
from teleop.device import TeleopCommand, TeleopDevice, TeleopEvent, hold_action


def dart_action(label: np.ndarray, noise: float, limit: float, rng: np.random.Generator) -> np.ndarray:
    """The action to execute: the expert's `label` with N(0, (noise * limit)^2) added to the x/y/z step.

    `noise` is a fraction of the robot's per-step translation limit; the gripper is never perturbed
    (a flipped gripper drops the object, which is a failure, not a recovery to learn from).
    """
    executed = np.asarray(label, dtype=np.float64).copy()
    if noise > 0:
        executed[:3] += rng.normal(0.0, noise * limit, size=3)
    return executed


class SimExpertTeleop(TeleopDevice):
    """The sim's scripted expert as the operator; keeps a demo once the task succeeds.

    With `dart > 0` the robot executes the expert's action plus Gaussian noise (std `dart` times the
    step limit on x/y/z) while the demo records the clean expert action (see teleop.expert_demos): the
    data then shows how the expert recovers from small errors, which a policy needs in closed loop.
    """

    name = "sim_expert"

    def __init__(self, robot: Robot | SimulatedRobot, dart: float = 0.0, seed: int = 0) -> None:
        if not isinstance(robot, SimulatedRobot):
            raise ConfigError(f"teleop=sim_expert needs a simulated robot with a scripted expert; {robot.name} has none")
        if not 0.0 <= dart <= 2.0:
            raise ConfigError(f"teleop.dart must be in [0, 2] (noise std as a fraction of the step limit), got {dart}")
        self._robot = robot
        self._dart = float(dart)
        self._rng = np.random.default_rng([int(seed), 0xDA27])

    def begin_episode(self, observation: Observation) -> None:
        self._gripper = float(observation.state[6])

    def command(self, observation: Observation, keys: Sequence[str] = ()) -> TeleopCommand:
        if self._robot.check_success():
            return TeleopCommand(hold_action(self._gripper), engaged=False, event=TeleopEvent.KEEP)
        label = np.asarray(self._robot.expert_action(), dtype=np.float64)
        if self._dart == 0.0:
            return TeleopCommand(label, engaged=True)
        executed = dart_action(label, self._dart, self._robot.action_spec.max_translation, self._rng)
        return TeleopCommand(executed, engaged=True, label=label)

    def applied(self, action: np.ndarray) -> None:
        self._gripper = float(action[6])
