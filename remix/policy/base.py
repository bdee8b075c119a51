"""The policy API every rollout codes against, and the two policies that need no model.

A policy is reset with a goal observation, then asked for one action per control step. Actions are
always in robot units (the 7-d end-effector delta plus gripper of `robots.robot`), so a rollout never
needs to know whether the action came from a network, a stored episode or a scripted expert.

`ReplayPolicy` and `ScriptedPolicy` exist so the evaluation and robot code can be tested end to end
without a trained model: a replayed demo must reproduce the demo, the scripted expert must solve the
sim task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from remix.common.errors import RemixError
from robots.sim_interface import SimulatedRobot

if TYPE_CHECKING:
    from robots.robot import Observation, Robot

ACTION_DIM = 7
"""x, y, z delta (m), roll, pitch, yaw delta (rad), gripper (0..1, 1 = open)."""

GRIPPER_INDEX = 6


class Policy(ABC):
    """Maps observations to robot-unit actions, conditioned on a goal given at `reset`."""

    @abstractmethod
    def reset(self, goal: Observation) -> None:
        """Start a new episode towards `goal`; forgets any history or queued actions."""

    @abstractmethod
    def act(self, observation: Observation) -> np.ndarray:
        """Return the next action, float32 (action_dim,) (7 for the robots here), in robot units."""

    def close(self) -> None:  # noqa: B027 - most policies hold nothing; those that do override it
        """Release sockets, files or devices the policy holds."""

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validate_action(action: Any, source: str, action_dim: int = ACTION_DIM) -> np.ndarray:
    """Return `action` as a finite float32 (action_dim,) vector, or raise naming `source`.

    Every policy funnels its output through this so a NaN or a wrong shape never reaches a robot;
    `action_dim` is the size the policy was trained for (7 for the robots here, other for other arms).
    """
    array = np.asarray(action, dtype=np.float32)
    if array.shape != (action_dim,):
        raise RemixError(f"{source} produced an action of shape {array.shape}, expected ({action_dim},); "
                         "check that the policy was trained for this robot's action space")
    if not np.all(np.isfinite(array)):
        raise RemixError(f"{source} produced a non-finite action {array.tolist()}; the policy is broken, "
                         "do not send it to a robot")
    return array


class ReplayPolicy(Policy):
    """Plays back a recorded action sequence, one action per `act`, ignoring observations.

    After the last recorded action it holds still: zero motion deltas, gripper kept at its last
    commanded value, so running a rollout longer than the demo is safe.
    """

    def __init__(self, actions: np.ndarray, gripper_dims: tuple[int, ...] = (GRIPPER_INDEX,),
                 source: str = "replay") -> None:
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 2 or len(actions) == 0:
            raise RemixError(f"{source}: cannot replay actions of shape {actions.shape}; "
                             "need a non-empty (T, action_dim) array")
        if any(not 0 <= dim < actions.shape[1] for dim in gripper_dims):
            raise RemixError(f"{source}: gripper dims {list(gripper_dims)} are outside the {actions.shape[1]} action dims")
        if not np.all(np.isfinite(actions)):
            raise RemixError(f"{source}: recorded actions contain NaN or inf; re-record or repair the episode")
        self.actions = actions
        self.source = source
        self.step = 0
        self._hold = np.zeros(actions.shape[1], dtype=np.float32)
        for dim in gripper_dims:
            self._hold[dim] = actions[-1, dim]

    @classmethod
    def from_store(cls, store_path: str | Path, episode: int) -> ReplayPolicy:
        """Replay episode `episode` of the episode store at `store_path`."""
        from remix.data import EpisodeStore

        store = EpisodeStore.open(store_path, mode="r")
        if not 0 <= episode < store.num_episodes:
            raise RemixError(f"episode {episode} is not in store {store_path} "
                             f"(it has {store.num_episodes} episodes: 0..{store.num_episodes - 1})")
        actions = store.read_episode(episode, keys=("action",))["action"]
        return cls(actions, gripper_dims=tuple(store.gripper_dims), source=f"replay:{store_path}#{episode}")

    @property
    def done(self) -> bool:
        """True once every recorded action has been returned."""
        return self.step >= len(self.actions)

    def reset(self, goal: Observation) -> None:
        self.step = 0

    def act(self, observation: Observation) -> np.ndarray:
        if self.done:
            return self._hold.copy()
        action = self.actions[self.step]
        self.step += 1
        return validate_action(action, self.source, len(action))


class ScriptedPolicy(Policy):
    """Asks a simulated robot's scripted expert (`robot.expert_action()`) for every action."""

    def __init__(self, robot: Robot | None) -> None:
        if not isinstance(robot, SimulatedRobot):
            raise RemixError(
                "policy 'scripted:expert' needs a simulated robot with a scripted expert "
                f"(got {type(robot).__name__}); use a sim robot config or another policy spec"
            )
        self.robot = robot

    def reset(self, goal: Observation) -> None:
        """The expert knows the task from the simulator; the goal image is not needed."""

    def act(self, observation: Observation) -> np.ndarray:
        return validate_action(self.robot.expert_action(), "scripted:expert")
