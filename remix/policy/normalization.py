"""Per-domain Gaussian action normalization (the Re-Mix recipe) and its inverse for the robot.

Each domain's actions are shifted and scaled by that domain's own mean and std, so a dataset
recorded in centimetres and one in metres land on the same scale; gripper dimensions are left as
recorded (0..1). Normalized actions are clipped to +-clip_range. At inference the chunk is mapped
back with the *target* embodiment's statistics and clipped to the range seen in its demonstrations,
so a policy never commands a step larger than its own training data did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from remix.errors import RemixError

MIN_STD = 1e-6


@dataclass(frozen=True)
class DomainStats:
    """Statistics of one domain: actions (mean, std, min, max) and proprio state (mean, std)."""

    action_mean: np.ndarray
    action_std: np.ndarray
    action_min: np.ndarray
    action_max: np.ndarray
    state_mean: np.ndarray
    state_std: np.ndarray
    num_steps: int

    @classmethod
    def compute(cls, actions: np.ndarray, states: np.ndarray, gripper_dims: tuple[int, ...]) -> DomainStats:
        actions = np.asarray(actions, dtype=np.float64)
        states = np.asarray(states, dtype=np.float64)
        if len(actions) == 0:
            raise RemixError("cannot compute normalization statistics of a domain with no steps; "
                             "drop the empty domain from the mixture")
        mean, std = actions.mean(0), actions.std(0)
        std = np.where(std < MIN_STD, 1.0, std)  # a constant dimension is shifted, never divided by ~0
        for dim in gripper_dims:
            mean[dim], std[dim] = 0.0, 1.0
        state_std = states.std(0)
        return cls(
            action_mean=mean.astype(np.float32),
            action_std=std.astype(np.float32),
            action_min=actions.min(0).astype(np.float32),
            action_max=actions.max(0).astype(np.float32),
            state_mean=states.mean(0).astype(np.float32),
            state_std=np.where(state_std < MIN_STD, 1.0, state_std).astype(np.float32),
            num_steps=len(actions),
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DomainStats:
        arrays = {k: np.asarray(v, dtype=np.float32) for k, v in values.items() if k != "num_steps"}
        for name, array in arrays.items():
            if not np.all(np.isfinite(array)):
                raise RemixError(f"normalization statistic {name} is not finite; the checkpoint is corrupt")
        return cls(num_steps=int(values["num_steps"]), **arrays)


@dataclass(frozen=True)
class Normalization:
    """Statistics per domain name, plus which domain's units the policy acts in by default."""

    domains: dict[str, DomainStats]
    gripper_dims: tuple[int, ...]
    clip_range: float
    target_domain: str

    def __post_init__(self) -> None:
        if self.target_domain not in self.domains:
            raise RemixError(f"target domain {self.target_domain!r} has no statistics; "
                             f"choose one of {sorted(self.domains)}")

    def stats(self, domain: str) -> DomainStats:
        if domain not in self.domains:
            raise RemixError(f"domain {domain!r} has no normalization statistics; choose one of {sorted(self.domains)}")
        return self.domains[domain]

    def normalize_actions(self, actions: np.ndarray, domain: str) -> np.ndarray:
        """Robot units -> the model's clipped Gaussian-normalized space."""
        stats = self.stats(domain)
        scaled = (np.asarray(actions, np.float32) - stats.action_mean) / stats.action_std
        return np.clip(scaled, -self.clip_range, self.clip_range).astype(np.float32)

    def unnormalize_actions(self, normalized: np.ndarray, domain: str | None = None) -> np.ndarray:
        """Model space -> robot units of `domain` (default: the target), clipped to its demonstrated range."""
        stats = self.stats(domain or self.target_domain)
        actions = np.asarray(normalized, np.float32) * stats.action_std + stats.action_mean
        return np.clip(actions, stats.action_min, stats.action_max).astype(np.float32)

    def normalize_state(self, state: np.ndarray, domain: str | None = None) -> np.ndarray:
        stats = self.stats(domain or self.target_domain)
        scaled = (np.asarray(state, np.float32) - stats.state_mean) / stats.state_std
        return np.clip(scaled, -self.clip_range, self.clip_range).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domains": {name: stats.to_dict() for name, stats in self.domains.items()},
            "gripper_dims": list(self.gripper_dims),
            "clip_range": self.clip_range,
            "target_domain": self.target_domain,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Normalization:
        return cls(
            domains={name: DomainStats.from_dict(stats) for name, stats in values["domains"].items()},
            gripper_dims=tuple(int(d) for d in values["gripper_dims"]),
            clip_range=float(values["clip_range"]),
            target_domain=str(values["target_domain"]),
        )

    def with_target(self, domain: str) -> Normalization:
        return Normalization(self.domains, self.gripper_dims, self.clip_range, domain)
