"""Per-domain action normalization for the diffusion policy, and its inverse for the robot.

Actions use the Re-Mix core's `ActionNormalizer` in Gaussian mode (each domain by its own mean and
std, gripper dims left as recorded), so the diffusion policy and the DRO policy see actions on the
same scale. This module adds what a policy needs on top: clipping in normalized space, proprio state
statistics, and the *target* domain whose units the policy acts in. Going back to robot units, an
action is also clipped to the range seen in the target domain's demonstrations, so a policy never
commands a step larger than its own training data did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from remix.common.errors import RemixError
from remix.core.actions import ActionNormalizer

MIN_STD = 1e-6


@dataclass(frozen=True)
class StateStats:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, states: np.ndarray) -> StateStats:
        states = np.asarray(states, dtype=np.float64)
        std = states.std(0)
        return cls(states.mean(0).astype(np.float32), np.where(std < MIN_STD, 1.0, std).astype(np.float32))


@dataclass(frozen=True)
class Normalization:
    """Action normalizer, state statistics per domain, clip range and the default target domain."""

    actions: ActionNormalizer
    states: Mapping[str, StateStats]
    clip_range: float
    target_domain: str

    def __post_init__(self) -> None:
        if self.target_domain not in self.actions.stats:
            raise RemixError(f"target domain {self.target_domain!r} has no statistics; "
                             f"choose one of {sorted(self.actions.stats)}")

    @classmethod
    def fit(cls, actions_by_domain: Mapping[str, np.ndarray], states_by_domain: Mapping[str, np.ndarray],
            gripper_dims: tuple[int, ...], clip_range: float, target_domain: str) -> Normalization:
        normalizer = ActionNormalizer.fit(actions_by_domain, mode="gaussian", gripper_dims=gripper_dims)
        states = {name: StateStats.of(s) for name, s in states_by_domain.items()}
        return cls(normalizer, states, float(clip_range), target_domain)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.actions.stats)

    def normalize_actions(self, actions: np.ndarray, domain: str) -> np.ndarray:
        """Robot units -> the model's clipped Gaussian-normalized space."""
        scaled = self.actions.normalize(actions, domain)
        return np.clip(scaled, -self.clip_range, self.clip_range).astype(np.float32)

    def unnormalize_actions(self, normalized: np.ndarray, domain: str | None = None) -> np.ndarray:
        """Model space -> robot units of `domain` (default: the target), clipped to its demonstrated range."""
        domain = domain or self.target_domain
        raw = self.actions.denormalize(normalized, domain)
        stats = self.actions.stats[domain]
        return np.clip(raw, np.array(stats.low), np.array(stats.high)).astype(np.float32)

    def normalize_state(self, state: np.ndarray, domain: str | None = None) -> np.ndarray:
        domain = domain or self.target_domain
        if domain not in self.states:
            raise RemixError(f"domain {domain!r} has no state statistics; choose one of {sorted(self.states)}")
        stats = self.states[domain]
        scaled = (np.asarray(state, np.float32) - stats.mean) / stats.std
        return np.clip(scaled, -self.clip_range, self.clip_range).astype(np.float32)

    def with_target(self, domain: str) -> Normalization:
        return Normalization(self.actions, self.states, self.clip_range, domain)

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": self.actions.to_dict(),
            "states": {name: {"mean": s.mean.tolist(), "std": s.std.tolist()} for name, s in self.states.items()},
            "clip_range": self.clip_range,
            "target_domain": self.target_domain,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Normalization:
        states = {}
        for name, s in values["states"].items():
            mean, std = np.asarray(s["mean"], np.float32), np.asarray(s["std"], np.float32)
            if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
                raise RemixError(f"state statistics of domain {name!r} are not finite/positive; the checkpoint is corrupt")
            states[name] = StateStats(mean, std)
        actions = ActionNormalizer.from_dict(values["actions"])
        for name, stats in actions.stats.items():
            if not all(np.isfinite(v) for v in (*stats.mean, *stats.std, *stats.low, *stats.high)):
                raise RemixError(f"action statistics of domain {name!r} are not finite; the checkpoint is corrupt")
        return cls(actions, states, float(values["clip_range"]), str(values["target_domain"]))
