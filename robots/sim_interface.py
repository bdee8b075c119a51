"""The simulated-robot interface: what a simulator offers beyond the `Robot` contract.

A simulator knows its tasks, can switch between them, judges success itself and has a scripted expert.
Goal capture (`remix-goal expert=true`), `teleop=sim_expert`, the `scripted:expert` policy and unattended
eval sessions need exactly these four members. `robots.sim.SimRobot` implements them, and so does a
`robots.remote.RemoteRobot` whose server's robot is simulated (the server advertises it on connect).
Callers check `isinstance(robot, SimulatedRobot)`, never probe attributes one by one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

SIMULATED_MEMBERS = ("tasks", "set_task", "check_success", "expert_action")


@runtime_checkable
class SimulatedRobot(Protocol):
    """A robot with built-in tasks, a success predicate and a scripted expert."""

    @property
    def tasks(self) -> tuple[str, ...]:
        """The task names `set_task` accepts."""

    def set_task(self, task: str) -> None:
        """Switch to `task` (one of `tasks`); takes effect at the next reset. Unknown names raise ConfigError."""

    def check_success(self) -> bool:
        """Whether the current task's success predicate holds now."""

    def expert_action(self) -> np.ndarray:
        """The scripted expert's next 7-d action for the current task."""
