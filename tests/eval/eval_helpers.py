"""Shared builders for the eval tests: hand-made trial logs, simple policies, a labelled mock robot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from eval.trial_log import SessionSpec, StepRecord, TrialLog, TrialRecord
from remix.policy import Policy
from robots.mock import MockRobot
from robots.robot import Observation


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def add_session(log: TrialLog, name: str, robot: str, cells: dict[tuple[str, str], Sequence[str]], day: str,
                policies: Sequence[str] = ("remix", "uniform")):
    """Write a session whose (task, policy) cells hold the given outcomes, trials starting on `day`."""
    tasks = tuple(dict.fromkeys(task for task, _ in cells))
    spec = SessionSpec(name=name, robot=robot, control_mode="blocking", control_hz=5.0, tasks=tasks,
                       policies={p: f"ckpt/{p}" for p in policies}, trials_per_cell=10, time_limit_s=100.0)
    session, _ = log.start_session(spec)
    t = utc(f"{day}T10:00:00")
    for (task, policy), outcomes in cells.items():
        for index, outcome in enumerate(outcomes):
            t += 60.0
            step = StepRecord(0.2, np.zeros(7, np.float32), np.zeros(7, np.float32), np.zeros(7, np.float32))
            log.record_trial(TrialRecord(session.id, task, policy, index, 0, index, t, t + 30.0, 1, outcome,
                                         "operator", "operator", "tester"), [step])
    return session


def outcomes(successes: int, failures: int, faults: int = 0) -> list[str]:
    return ["success"] * successes + ["failure"] * failures + ["robot_fault"] * faults


class ConstantPolicy(Policy):
    """Always the same action; counts its calls."""

    def __init__(self, action: Sequence[float]) -> None:
        self.action = np.asarray(action, np.float32)
        self.resets = 0
        self.calls = 0
        self.goals: list[Observation] = []

    def reset(self, goal: Observation) -> None:
        self.resets += 1
        self.goals.append(goal)

    def act(self, observation: Observation) -> np.ndarray:
        self.calls += 1
        return self.action.copy()


class ReachXRobot(MockRobot):
    """A mock arm with a task predicate (x beyond a threshold), standing in for a sim robot."""

    def __init__(self, threshold: float = 0.395, **kwargs) -> None:
        kwargs.setdefault("name", "reachx")
        super().__init__(**kwargs)
        self.threshold = threshold

    def check_success(self) -> bool | None:
        return bool(self.target.position[0] >= self.threshold)


GOAL = ["", "", "y"]  # start placements + Enter, goal scene + Enter, then keep the captured goal image


def answers_for(trials: int, label: str, goals: int = 0, note: str = "") -> list[str]:
    """Scripted operator answers: `goals` goal captures, then per trial start/label/note."""
    return GOAL * goals + ["", label, note] * trials


def write_png(path: Path, color: tuple[int, int, int], size: int = 64) -> Path:
    import cv2

    image = np.zeros((size, size, 3), np.uint8)
    image[:] = color[::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return path
