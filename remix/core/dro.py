"""Group DRO over the excess loss: the exponentiated-gradient update of the domain weights alpha.

Per batch, with excess_i = NLL_proxy(i) - NLL_ref(i):

    v_i       = max(excess_i, 0)  if clip_excess  else excess_i
    score_d   = "positive": mean of v_i over samples of d with v_i > 0  (release; 0 if none)
                "all":      mean of v_i over all samples of d            (DoReMi)
                a domain absent from the batch scores 0 ("zero", release) or keeps its last score ("last")
                a domain the reference stage found unlearnable scores 0 with unlearnable="zero" (its
                excess on training windows is memorisation, not room to improve; early_stop.py)
    alpha     = normalize(alpha * exp(eta * score))
    alpha     = (1 - smoothing) * alpha + smoothing * target      (target: alpha0 = size shares, or uniform)
    average  += (alpha - average) / (t + 1)                        (alpha0 itself is not averaged)
    loss      = sum_d alpha_d * mean_{i in d} excess_i             (unclipped; uses the updated alpha)

The batch enters only through per-domain sums (`DomainSums`), so under DistributedDataParallel the
sums are all-reduced first and every rank applies the same update; the loss is then scaled so that
DDP's gradient averaging reproduces the single-process gradient of the whole global batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from remix.common.errors import ConfigError
from remix.core.distributed import all_reduce_sum
from remix.data.mixture import normalize_weights


@dataclass(frozen=True)
class DROConfig:
    """Settings of the alpha update: the authors' release behaviour (RT-X numbers), except that domains
    found unlearnable score 0 (`unlearnable`; measured in docs/remix-core.md; remix=release restores it)."""

    eta: float = 0.2
    smoothing: float = 0.05
    smoothing_target: Literal["alpha0", "uniform"] = "alpha0"
    clip_excess: bool = True
    scoring: Literal["positive", "all"] = "positive"
    absent: Literal["zero", "last"] = "zero"
    # zero: domains the reference stage found unlearnable score 0; score: like any other (release)
    unlearnable: Literal["score", "zero"] = "zero"

    def __post_init__(self) -> None:
        if not self.eta > 0:
            raise ConfigError(f"dro.eta must be > 0, got {self.eta}")
        if not 0 <= self.smoothing <= 1:
            raise ConfigError(f"dro.smoothing must be in [0, 1], got {self.smoothing}")
        if self.smoothing_target not in ("alpha0", "uniform"):
            raise ConfigError(
                f"dro.smoothing_target must be alpha0 or uniform, got {self.smoothing_target!r}"
            )
        if self.scoring not in ("positive", "all"):
            raise ConfigError(f"dro.scoring must be positive or all, got {self.scoring!r}")
        if self.absent not in ("zero", "last"):
            raise ConfigError(f"dro.absent must be zero or last, got {self.absent!r}")
        if self.unlearnable not in ("score", "zero"):
            raise ConfigError(f"dro.unlearnable must be score or zero, got {self.unlearnable!r}")


@dataclass(frozen=True)
class DomainSums:
    """Per-domain sums over a batch, (K,) float64 each; summable across ranks."""

    score_sum: torch.Tensor  # sum of v_i
    count: torch.Tensor  # number of samples
    positive_count: torch.Tensor  # number of samples with v_i > 0
    excess_sum: torch.Tensor  # sum of unclipped excess_i

    @classmethod
    def of(cls, excess: torch.Tensor, domains: torch.Tensor, num_domains: int, clip: bool) -> DomainSums:
        e = excess.detach().to(torch.float64)
        v = e.clamp_min(0.0) if clip else e
        d = domains.long()

        def per_domain(values: torch.Tensor) -> torch.Tensor:
            return torch.zeros(num_domains, dtype=torch.float64, device=e.device).index_add_(0, d, values)

        return cls(
            per_domain(v), per_domain(torch.ones_like(v)), per_domain((v > 0).to(v.dtype)), per_domain(e)
        )

    def stacked(self) -> torch.Tensor:
        return torch.stack([self.score_sum, self.count, self.positive_count, self.excess_sum])

    @classmethod
    def from_stacked(cls, t: torch.Tensor) -> DomainSums:
        return cls(t[0], t[1], t[2], t[3])

    def all_reduce(self) -> DomainSums:
        """Sum over all ranks (no-op outside torch.distributed)."""
        return DomainSums.from_stacked(all_reduce_sum(self.stacked()))


class GroupDRO:
    """The domain weights alpha, their running average, and the per-step update."""

    def __init__(
        self,
        alpha0: Sequence[float] | torch.Tensor,
        config: DROConfig,
        unlearnable: Sequence[bool] | None = None,
    ) -> None:
        """`unlearnable`: per-domain flags from the reference stage (used with config.unlearnable="zero")."""
        a0 = torch.as_tensor(normalize_weights(torch.as_tensor(alpha0, dtype=torch.float64).tolist()))
        self.config = config
        self.alpha0 = a0
        self.alpha = a0.clone()
        self.average = a0.clone()
        self.last_score = torch.zeros_like(a0)
        self.steps = 0
        k = a0.numel()
        self.target = a0 if config.smoothing_target == "alpha0" else torch.full_like(a0, 1.0 / k)
        flags = [False] * k if unlearnable is None else list(unlearnable)
        if len(flags) != k:
            raise ConfigError(f"{len(flags)} unlearnable flags for {k} domains")
        self.unlearnable = torch.tensor(flags, dtype=torch.bool)

    @property
    def num_domains(self) -> int:
        return self.alpha.numel()

    def scores(self, sums: DomainSums) -> torch.Tensor:
        """Per-domain score of one (global) batch."""
        if self.config.scoring == "positive":
            score = sums.score_sum / sums.positive_count.clamp_min(1.0)
        else:
            score = sums.score_sum / sums.count.clamp_min(1.0)
        absent = sums.count == 0
        fill = self.last_score if self.config.absent == "last" else torch.zeros_like(score)
        score = torch.where(absent, fill, score)
        if self.config.unlearnable == "zero":
            score = torch.where(self.unlearnable.to(score.device), torch.zeros_like(score), score)
        return score

    def update(self, sums: DomainSums) -> torch.Tensor:
        """Apply one exponentiated-gradient step; returns the per-domain scores used."""
        sums = DomainSums.from_stacked(sums.stacked().to(self.alpha.device))
        score = self.scores(sums)
        self.last_score = score
        # Multiply in log space and renormalize with a max shift, so large eta*score cannot overflow.
        logits = torch.log(self.alpha) + self.config.eta * score
        alpha = torch.softmax(logits, dim=0)
        alpha = (1.0 - self.config.smoothing) * alpha + self.config.smoothing * self.target
        self.alpha = alpha / alpha.sum()
        self.average = self.average + (self.alpha - self.average) / (self.steps + 1)
        self.steps += 1
        return score

    def loss(
        self, excess: torch.Tensor, domains: torch.Tensor, sums: DomainSums, world_size: int = 1
    ) -> torch.Tensor:
        """sum_d alpha_d * mean excess of d over the global batch, scaled for DDP gradient averaging.

        `excess` carries the gradient (proxy NLL minus a constant reference NLL); `sums` are the
        all-reduced sums of the global batch, so each rank divides by the global per-domain count.
        """
        weight = (self.alpha.to(excess.device) / sums.count.to(excess.device).clamp_min(1.0)).to(excess.dtype)
        return (weight[domains.long()] * excess).sum() * world_size

    def state_dict(self) -> dict[str, torch.Tensor | int]:
        return {
            "alpha": self.alpha,
            "average": self.average,
            "last_score": self.last_score,
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict[str, torch.Tensor | int]) -> None:
        """Restore what `state_dict` saved (resuming a DRO run)."""
        self.alpha = torch.as_tensor(state["alpha"]).cpu().to(torch.float64)
        self.average = torch.as_tensor(state["average"]).cpu().to(torch.float64)
        self.last_score = torch.as_tensor(state["last_score"]).cpu().to(torch.float64)
        self.steps = int(state["steps"])
