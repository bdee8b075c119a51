"""Shared fixtures for the policy tests: a minimal observation type and a fake sim robot."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest


@dataclass(frozen=True)
class FakeObservation:
    """Same fields as robots.robot.Observation (the policy code only reads images and state)."""

    images: dict[str, np.ndarray]
    state: np.ndarray
    timestamps: dict[str, float] = field(default_factory=dict)


class FakeSimRobot:
    """Just enough of a sim robot for ScriptedPolicy: a scripted expert that counts its calls."""

    name = "fake_sim"

    def __init__(self) -> None:
        self.calls = 0

    def expert_action(self) -> np.ndarray:
        self.calls += 1
        return np.array([0.01 * self.calls, 0, 0, 0, 0, 0, 1.0])


def make_observation(seed: int = 0, size: int = 32, cameras: tuple[str, ...] = ("cam0",)) -> FakeObservation:
    rng = np.random.default_rng(seed)
    images = {name: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for name in cameras}
    return FakeObservation(images=images, state=rng.normal(size=7).astype(np.float32))


@pytest.fixture
def observation() -> FakeObservation:
    return make_observation()
