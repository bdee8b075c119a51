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


class SimExpertTeleop(TeleopDevice):
    """The sim's scripted expert as the operator; keeps a demo once the task succeeds."""

    name = "sim_expert"

    def __init__(self, robot: Robot | SimulatedRobot) -> None:
        if not isinstance(robot, SimulatedRobot):
            raise ConfigError(f"teleop=sim_expert needs a simulated robot with a scripted expert; {robot.name} has none")
        self._robot = robot

    def begin_episode(self, observation: Observation) -> None:
        self._gripper = float(observation.state[6])

    def command(self, observation: Observation, keys: Sequence[str] = ()) -> TeleopCommand:
        if self._robot.check_success():
            return TeleopCommand(hold_action(self._gripper), engaged=False, event=TeleopEvent.KEEP)
        action = np.asarray(self._robot.expert_action(), dtype=np.float64)
        return TeleopCommand(action, engaged=True)

    def applied(self, action: np.ndarray) -> None:
        self._gripper = float(action[6])
