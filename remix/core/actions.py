"""Action preprocessing for the discrete policy: per-domain normalization, then per-dimension bins.

Why per domain: domains record actions in different units and scales. Group DRO compares losses
across domains, so their action distributions must be aligned first; the paper's Table 1 shows that
with `bounds` normalization a pure-noise domain soaks up almost all the weight, while per-domain
Gaussian normalization fixes that. `bounds` is kept to reproduce that failure mode, and `global`
(one Gaussian fitted on all domains pooled: no per-domain normalization) for the ablation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from remix.common.errors import ConfigError, RemixError

NormalizationMode = Literal["gaussian", "global", "bounds", "none"]
BinKind = Literal["uniform", "gaussian"]

_ZERO_SPREAD = 1e-6
# Equal-probability bins of N(0, 2^2) cover the central 99% (release: ppf(linspace(0.005, 0.995))).
_GAUSSIAN_BIN_SCALE = 2.0
_GAUSSIAN_BIN_TAIL = 0.005


MAX_BINS = 4096  # bins per action dimension (upper bound: memory grows with it)


@dataclass(frozen=True)
class DomainActionStats:
    """Per-dimension statistics of one domain's actions (float64 lists, JSON friendly)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    count: int

    @classmethod
    def of(cls, actions: np.ndarray, name: str) -> DomainActionStats:
        """Statistics of a (N, A) action array; NaN/inf or empty arrays are user errors."""
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] == 0:
            raise RemixError(f"domain {name!r} has no actions (shape {a.shape}); drop it or fix its data")
        bad = ~np.isfinite(a)
        if bad.any():
            step = int(np.argwhere(bad)[0][0])
            raise RemixError(
                f"domain {name!r} has {int(bad.sum())} NaN/inf action values (first at step {step}); "
                "clean or drop those episodes"
            )
        return cls(
            mean=tuple(a.mean(0).tolist()),
            std=tuple(a.std(0).tolist()),
            low=tuple(a.min(0).tolist()),
            high=tuple(a.max(0).tolist()),
            count=int(a.shape[0]),
        )


@dataclass(frozen=True)
class ActionNormalizer:
    """Maps each domain's raw actions to a shared, comparable scale (and back).

    gaussian: (a - mean_d) / std_d per dimension; global: the same with mean and std of all domains
    pooled; bounds: [min_d, max_d] -> [-1, 1]; none: identity.
    A dimension whose spread is (near) zero maps to 0 instead of dividing by zero. Gripper
    dimensions stay raw when `normalize_gripper` is false (the release's choice).
    """

    mode: NormalizationMode
    stats: Mapping[str, DomainActionStats]
    gripper_dims: tuple[int, ...] = ()
    normalize_gripper: bool = False
    action_dim: int = field(default=0)

    @classmethod
    def fit(
        cls,
        actions_by_domain: Mapping[str, np.ndarray],
        mode: NormalizationMode = "gaussian",
        gripper_dims: Sequence[int] = (),
        normalize_gripper: bool = False,
    ) -> ActionNormalizer:
        if mode not in ("gaussian", "global", "bounds", "none"):
            raise ConfigError(f"unknown normalization {mode!r}; use gaussian, global, bounds or none")
        dims = {name: np.shape(a)[-1] for name, a in actions_by_domain.items()}
        if len(set(dims.values())) > 1:
            raise RemixError(
                f"action dims differ across domains {dims}; convert the stores to one action space first"
            )
        stats = {name: DomainActionStats.of(a, name) for name, a in actions_by_domain.items()}
        if mode == "global" and stats:
            pooled = DomainActionStats.of(np.concatenate(list(actions_by_domain.values())), "all domains")
            stats = dict.fromkeys(stats, pooled)
        action_dim = next(iter(dims.values())) if dims else 0
        bad = [d for d in gripper_dims if not 0 <= d < action_dim]
        if bad:
            raise ConfigError(f"gripper dims {bad} are outside the {action_dim} action dims")
        return cls(mode, stats, tuple(int(d) for d in gripper_dims), bool(normalize_gripper), int(action_dim))

    def _affine(self, domain: str) -> tuple[np.ndarray, np.ndarray]:
        """(shift, scale) such that normalized = (raw - shift) / scale."""
        if domain not in self.stats:
            raise RemixError(f"no normalization statistics for domain {domain!r}; refit or use the right run")
        s = self.stats[domain]
        if self.mode in ("gaussian", "global"):
            shift, scale = np.array(s.mean), np.array(s.std)
        elif self.mode == "bounds":
            low, high = np.array(s.low), np.array(s.high)
            shift, scale = (low + high) / 2, (high - low) / 2
        else:
            shift, scale = np.zeros(self.action_dim), np.ones(self.action_dim)
        scale = np.where(scale < _ZERO_SPREAD, 1.0, scale)
        if not self.normalize_gripper:
            for d in self.gripper_dims:
                shift[d], scale[d] = 0.0, 1.0
        return shift, scale

    def normalize(self, actions: np.ndarray, domain: str) -> np.ndarray:
        shift, scale = self._affine(domain)
        return ((np.asarray(actions, dtype=np.float64) - shift) / scale).astype(np.float32)

    def denormalize(self, actions: np.ndarray, domain: str) -> np.ndarray:
        shift, scale = self._affine(domain)
        return (np.asarray(actions, dtype=np.float64) * scale + shift).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON form saved with every run (normalization.json)."""
        return {
            "mode": self.mode,
            "gripper_dims": list(self.gripper_dims),
            "normalize_gripper": self.normalize_gripper,
            "action_dim": self.action_dim,
            "domains": {
                name: {
                    "mean": list(s.mean),
                    "std": list(s.std),
                    "low": list(s.low),
                    "high": list(s.high),
                    "count": s.count,
                }
                for name, s in self.stats.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionNormalizer:
        try:
            stats = {
                name: DomainActionStats(
                    tuple(d["mean"]), tuple(d["std"]), tuple(d["low"]), tuple(d["high"]), int(d["count"])
                )
                for name, d in data["domains"].items()
            }
            return cls(
                data["mode"],
                stats,
                tuple(data["gripper_dims"]),
                bool(data["normalize_gripper"]),
                int(data["action_dim"]),
            )
        except (KeyError, TypeError) as error:
            raise RemixError(
                f"normalization statistics are incomplete ({error}); re-run remix-weights"
            ) from None


@dataclass(frozen=True)
class ActionBinner:
    """Per-dimension discretization of normalized actions into `n_bins` classes.

    uniform: edges = linspace(-1, 1, n+1), values clipped to [-1, 1].
    gaussian: equal-probability bins of N(0, 2^2) over its central 99% (about +-5.15), clipped there.
    Decoding maps a bin to its center (midpoint of its edges).
    """

    kind: BinKind = "gaussian"
    n_bins: int = 100

    def __post_init__(self) -> None:
        if self.kind not in ("uniform", "gaussian"):
            raise ConfigError(f"unknown bin kind {self.kind!r}; use uniform or gaussian")
        if self.n_bins < 2:
            raise ConfigError(f"need at least 2 bins per action dimension, got {self.n_bins}")
        if self.n_bins > MAX_BINS:  # the output layer and the bin tables grow with it (10^9 bins: 21 GB, OOM)
            raise ConfigError(f"n_bins={self.n_bins} is more than {MAX_BINS} bins per action dimension (the default is 100)")

    @property
    def edges(self) -> np.ndarray:
        """The n_bins + 1 bin edges (float64, increasing)."""
        if self.kind == "uniform":
            return np.linspace(-1.0, 1.0, self.n_bins + 1)
        quantiles = torch.linspace(
            _GAUSSIAN_BIN_TAIL, 1 - _GAUSSIAN_BIN_TAIL, self.n_bins + 1, dtype=torch.float64
        )
        return (torch.special.ndtri(quantiles) * _GAUSSIAN_BIN_SCALE).numpy()

    @property
    def centers(self) -> np.ndarray:
        e = self.edges
        return (e[:-1] + e[1:]) / 2

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Normalized actions (any shape) -> int64 bin indices in [0, n_bins)."""
        a = np.asarray(actions, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise RemixError("cannot bin NaN/inf actions; clean the data")
        e = self.edges
        return np.clip(np.searchsorted(e[1:-1], np.clip(a, e[0], e[-1]), side="right"), 0, self.n_bins - 1)

    def decode(self, bins: np.ndarray) -> np.ndarray:
        """Bin indices -> bin centers (float32)."""
        return self.centers[np.asarray(bins, dtype=np.int64)].astype(np.float32)

    def max_error(self) -> float:
        """Largest round-trip error for in-range values: half the widest bin."""
        return float(np.max(np.diff(self.edges)) / 2)


def gaussian_bin_range() -> float:
    """Half-width of the range covered by "gaussian" bins (about 5.15)."""
    return (
        float(torch.special.ndtri(torch.tensor(1 - _GAUSSIAN_BIN_TAIL, dtype=torch.float64)))
        * _GAUSSIAN_BIN_SCALE
    )
