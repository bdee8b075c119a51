"""Factories for every backend the contract suite runs against (imported by the contract tests)."""

from __future__ import annotations

from collections.abc import Callable

from robots.mock import MockRobot
from robots.robot import Robot
from robots.sim import SimRobot


def backend_factories() -> dict[str, Callable[[], Robot]]:
    return {
        "mock-rate": lambda: MockRobot(control_mode="rate", control_hz=50.0),
        "mock-blocking": lambda: MockRobot(control_mode="blocking", control_hz=5.0,
                                           cameras={"cam0": (48, 64), "wrist": (32, 32)}),
        "sim-widowx": lambda: SimRobot(profile="widowx", cameras={"cam0": (32, 32)}),
        "sim-franka": lambda: SimRobot(profile="franka", cameras={"cam0": (32, 48), "overhead": (32, 32)}),
    }
