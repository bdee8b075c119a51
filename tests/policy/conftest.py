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
    """Just enough of a sim robot (robots.sim_interface.SimulatedRobot) for ScriptedPolicy: an expert that counts its calls."""

    name = "fake_sim"
    tasks = ("reach",)

    def __init__(self) -> None:
        self.calls = 0

    def set_task(self, task: str) -> None:
        assert task in self.tasks

    def check_success(self) -> bool:
        return False

    def expert_action(self) -> np.ndarray:
        self.calls += 1
        return np.array([0.01 * self.calls, 0, 0, 0, 0, 0, 1.0])


def make_observation(seed: int = 0, size: int = 16, cameras: tuple[str, ...] = ("cam0",)) -> FakeObservation:
    rng = np.random.default_rng(seed)
    images = {name: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for name in cameras}
    return FakeObservation(images=images, state=rng.normal(size=7).astype(np.float32))


@pytest.fixture
def observation() -> FakeObservation:
    return make_observation()


TINY_MODEL_KWARGS = dict(encoder="tiny", image_size=(16, 16), horizon=4, embed_dim=32, hidden_dim=64, num_blocks=1,
                         num_train_timesteps=20)


def tiny_normalization(domains: tuple[str, ...] = ("robot",), scale: float = 1.0):
    """Statistics fitted on random actions: motion dims ~ N(0.01, 0.02 * scale), gripper 0/1."""
    from remix.policy.normalization import Normalization

    rng = np.random.default_rng(0)
    actions, states = {}, {}
    for index, name in enumerate(domains):
        motion = rng.normal(0.01, 0.02 * scale * (index + 1), size=(200, 6))
        actions[name] = np.concatenate([motion, rng.integers(0, 2, (200, 1))], axis=1)
        states[name] = rng.normal(size=(200, 7))
    return Normalization.fit(actions, states, (6,), 5.0, domains[0])


def write_tiny_checkpoint(directory, seed: int = 0, **model_overrides):
    """An untrained tiny model saved as a checkpoint; returns (path, net, normalization)."""
    import torch

    from remix.policy.checkpoint import save_checkpoint
    from remix.policy.config import ModelConfig
    from remix.policy.model import DiffusionPolicyNet

    torch.manual_seed(seed)
    config = ModelConfig(**{**TINY_MODEL_KWARGS, **model_overrides})
    net = DiffusionPolicyNet(config)
    normalization = tiny_normalization()
    path = save_checkpoint(directory, net.state_dict(), config, normalization, {"step": 0})
    return path, net, normalization
