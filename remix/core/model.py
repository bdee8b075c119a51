"""The discrete policy Re-Mix trains twice (reference and proxy): encoders, an MLP trunk, a bin head.

Observations are an `n_obs`-frame history plus a goal (hindsight-relabelled last frame). Images go
through a torchvision ResNet whose first convolution takes the frames and the goal image stacked on
channels plus two pixel-coordinate channels (x, y in [-1, 1]), so the globally pooled features still
know where things are. Low-dim state goes through an MLP. The head is one linear layer to
(horizon x action_dim x n_bins) logits; the loss is the cross-entropy summed over action dims and
averaged over the valid steps of the chunk, per sample, because Group DRO needs per-sample losses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from remix.common.errors import ConfigError

IMAGE_ENCODERS = ("tiny", "resnet18", "resnet34", "resnet50")


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of the discrete policy (the same for reference and proxy)."""

    action_dim: int
    n_bins: int
    horizon: int = 1
    n_obs: int = 2
    state_dim: int = 0
    cameras: tuple[str, ...] = ()
    encoder: str = "resnet18"
    use_goal: bool = True
    state_hidden: int = 128
    hidden_dims: tuple[int, ...] = (512, 512, 512)
    dropout: float = 0.0
    continuous: bool = False  # ablation (paper Fig. 4): regress normalized actions, L2 loss, no bins
    feature_dim: int = 0  # frozen-feature mode: precomputed image features in batch["features"] (features.py)

    def __post_init__(self) -> None:
        if self.encoder == "conv":  # the old name of the small CNN
            raise ConfigError("model.encoder 'conv' is now called 'tiny'; write model.encoder=tiny")
        if self.encoder not in IMAGE_ENCODERS:
            raise ConfigError(f"unknown image encoder {self.encoder!r}; use one of {IMAGE_ENCODERS}")
        if self.state_dim <= 0 and not self.cameras and self.feature_dim <= 0:
            raise ConfigError("the policy sees nothing: enable state (model.use_state) or give cameras")
        if self.action_dim <= 0 or self.n_bins < 2 or self.horizon < 1 or self.n_obs < 1:
            raise ConfigError(
                f"bad policy shape action_dim={self.action_dim} n_bins={self.n_bins} "
                f"horizon={self.horizon} n_obs={self.n_obs}"
            )


def _coordinate_channels(height: int, width: int, device: torch.device) -> torch.Tensor:
    ys = torch.linspace(-1.0, 1.0, height, device=device).view(1, 1, height, 1).expand(1, 1, height, width)
    xs = torch.linspace(-1.0, 1.0, width, device=device).view(1, 1, 1, width).expand(1, 1, height, width)
    return torch.cat([xs, ys], dim=1)


class ImageEncoder(nn.Module):
    """Frames (+ goal) of one camera, stacked on channels with pixel coordinates -> a feature vector."""

    def __init__(self, frames: int, kind: str) -> None:
        super().__init__()
        in_channels = 3 * frames + 2
        if kind == "tiny":  # tiny CNN for CPU tests and the built-in demo
            self.net = nn.Sequential(
                nn.Conv2d(in_channels, 32, 5, stride=2, padding=2),
                nn.GroupNorm(8, 32),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.GroupNorm(8, 64),
                nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.out_dim = 64
        else:
            resnet = getattr(torchvision.models, kind)(weights=None)
            resnet.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.out_dim = resnet.fc.in_features
            resnet.fc = nn.Identity()
            self.net = resnet

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 (B, F, H, W, 3) -> (B, out_dim)."""
        b, f, h, w, c = frames.shape
        x = frames.permute(0, 1, 4, 2, 3).reshape(b, f * c, h, w).float().div_(127.5).sub_(1.0)
        x = torch.cat([x, _coordinate_channels(h, w, x.device).expand(b, -1, -1, -1)], dim=1)
        return self.net(x)


def _mlp(in_dim: int, dims: tuple[int, ...], dropout: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for dim in dims:
        layers += [nn.Linear(in_dim, dim), nn.LayerNorm(dim), nn.GELU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = dim
    return nn.Sequential(*layers), in_dim


class DiscretePolicy(nn.Module):
    """Goal-conditioned policy with a categorical distribution over action bins per dimension and step."""

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = config
        frames = config.n_obs + (1 if config.use_goal else 0)
        self.image_encoders = nn.ModuleDict(
            {cam: ImageEncoder(frames, config.encoder) for cam in config.cameras}
        )
        features = sum(enc.out_dim for enc in self.image_encoders.values()) + config.feature_dim
        if config.state_dim > 0:
            state_in = config.state_dim * (frames + (1 if config.use_goal else 0))
            self.state_encoder, state_out = _mlp(state_in, (config.state_hidden,), 0.0)
            features += state_out
        self.register_buffer("state_mean", torch.zeros(max(config.state_dim, 1)))
        self.register_buffer("state_std", torch.ones(max(config.state_dim, 1)))
        self.trunk, trunk_out = _mlp(features, config.hidden_dims, config.dropout)
        outputs_per_dim = 1 if config.continuous else config.n_bins
        self.head = nn.Linear(trunk_out, config.horizon * config.action_dim * outputs_per_dim)

    def set_state_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Input standardization of the low-dim state (zero-spread dims are left unscaled)."""
        self.state_mean.copy_(mean)
        self.state_std.copy_(torch.where(std < 1e-6, torch.ones_like(std), std))

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B, horizon, action_dim, n_bins); with `continuous`, actions (B, horizon, action_dim)."""
        c = self.config
        features = self.image_features(batch)
        if c.feature_dim > 0:
            features.append(batch["features"])
        if c.state_dim > 0:
            state = batch["state"]
            if c.use_goal:
                goal = batch["goal/state"].unsqueeze(1)
                # The goal-minus-current difference is given explicitly: it is tiny relative to the
                # spread of positions, and an MLP learns it from the standardized inputs only slowly.
                delta = (goal - state[:, -1:]) / self.state_std
                state = torch.cat(
                    [(state - self.state_mean) / self.state_std, (goal - self.state_mean) / self.state_std],
                    dim=1,
                )
                state = torch.cat([state, delta], dim=1)
            else:
                state = (state - self.state_mean) / self.state_std
            features.append(self.state_encoder(state.flatten(1)))
        logits = self.head(self.trunk(torch.cat(features, dim=-1)))
        if c.continuous:
            return logits.view(-1, c.horizon, c.action_dim)
        return logits.view(-1, c.horizon, c.action_dim, c.n_bins)

    def image_features(self, batch: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """One feature vector per camera (its frames and goal stacked on channels), (B, out_dim) each."""
        features = []
        for cam, encoder in self.image_encoders.items():
            frames = batch[f"images/{cam}"]
            if self.config.use_goal:
                frames = torch.cat([frames, batch[f"goal/{cam}"].unsqueeze(1)], dim=1)
            features.append(encoder(frames))
        return features

    def nll(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Per-sample NLL (B,); see `sequence_nll`."""
        return sequence_nll(self(batch), batch)

    @torch.no_grad()
    def predict_bins(self, batch: Mapping[str, torch.Tensor], sample: bool = False) -> torch.Tensor:
        """Most likely (or sampled) bin per step and dimension, (B, horizon, action_dim)."""
        logits = self(batch)
        if sample:
            return torch.distributions.Categorical(logits=logits).sample()
        return logits.argmax(-1)


def sequence_nll(logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Per-sample NLL (B,): cross-entropy summed over action dims, averaged over valid chunk steps.

    A free function so that training calls the (possibly DDP-wrapped) module's forward itself. For a
    continuous policy (outputs (B, horizon, action_dim)) it is the Gaussian NLL with unit variance up to
    its constant: half the squared error to the normalized actions, summed over dims.
    """
    bins = batch["bins"]
    if logits.dim() == 3:
        ce = 0.5 * (logits - batch["actions"].to(logits.dtype)).square().sum(-1)
    else:
        ce = F.cross_entropy(logits.flatten(0, 2), bins.flatten(), reduction="none").view(bins.shape).sum(-1)
    valid = batch["valid"].to(ce.dtype)
    return (ce * valid).sum(-1) / valid.sum(-1).clamp_min(1.0)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup then cosine decay (the release's schedule)."""

    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int = 1000
    grad_clip: float = 1.0
    betas: tuple[float, float] = field(default=(0.9, 0.999))


def make_optimizer(
    model: nn.Module, config: OptimConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    from diffusers.optimization import get_cosine_schedule_with_warmup

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=config.betas
    )
    warmup = min(config.warmup_steps, total_steps)
    return optimizer, get_cosine_schedule_with_warmup(optimizer, warmup, max(total_steps, 1))
