"""Frozen-feature mode: encode every training window's images once, then train heads on the cache.

Re-Mix's cost is two full trainings plus the DRO stage's forward/backward through the image encoder
every step (the paper's stated limitation). With the encoder frozen, the DRO proxy (and optionally
the reference) is only a head, an MLP over cached features, so a DRO step costs what a state-only
step costs. Two frozen encoders:

    imagenet    torchvision ResNet-18 with ImageNet weights, each frame (history and goal) encoded on its
                own (3 channels, ImageNet normalization) and the per-frame features concatenated. Only
                weights already on disk are used (torch hub cache, `features.weights=` or the
                TORCH_HOME cache): nothing is downloaded. With `reference_head`, the reference stage
                too trains a head on these features.
    reference   the reference's own image encoders after the reference stage (frames and goal stacked
                on channels, as the reference sees them); the DRO proxy is a fresh head on them.
    auto        imagenet when its weights are on disk, else reference.

The proxy's excess is still measured against the reference's NLL of the same windows, so the weights
answer the same question; how close they come to the full mode's is measured by
benchmarks/frozen_features.py (docs/remix-core.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torchvision
from torch import nn

from remix.common.errors import ConfigError
from remix.core.dataset import Batch, EncodedWindows
from remix.core.model import DiscretePolicy

FeatureMode = Literal["off", "auto", "imagenet", "reference"]
Encoder = Callable[[Batch], torch.Tensor]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class FeatureSettings:
    """`features.*`: frozen-feature mode (off by default: the full model is trained in every stage)."""

    mode: FeatureMode = "off"
    reference_head: bool = False  # imagenet: the reference stage trains a head on the features too
    weights: str | None = None  # ImageNet ResNet-18 state dict file; None: look in the torch hub cache
    batch_size: int = 256  # windows per encoding batch

    def __post_init__(self) -> None:
        if self.mode not in ("off", "auto", "imagenet", "reference"):
            raise ConfigError(f"features.mode must be off, auto, imagenet or reference, got {self.mode!r}")


def imagenet_weights_path(explicit: str | None = None) -> Path | None:
    """The local ResNet-18 ImageNet weights file, or None if the user does not have it."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"features.weights={explicit} does not exist; give a ResNet-18 state dict file")
        return path
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    return path if path.is_file() else None


class ImageNetFrames(nn.Module):
    """Frozen ResNet-18 (ImageNet) applied to each frame and the goal of every camera; features concatenated."""

    def __init__(self, weights: Path, cameras: tuple[str, ...], use_goal: bool) -> None:
        super().__init__()
        net = torchvision.models.resnet18(weights=None)
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        net.fc = nn.Identity()
        self.net = net.eval().requires_grad_(False)
        self.cameras, self.use_goal = cameras, use_goal
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    @torch.no_grad()
    def forward(self, batch: Batch) -> torch.Tensor:
        parts = []
        for cam in self.cameras:
            frames = batch[f"images/{cam}"]
            if self.use_goal:
                frames = torch.cat([frames, batch[f"goal/{cam}"].unsqueeze(1)], dim=1)
            b, f = frames.shape[:2]
            x = frames.flatten(0, 1).permute(0, 3, 1, 2).float().div_(255.0)
            parts.append(self.net((x - self.mean) / self.std).view(b, f * 512))
        return torch.cat(parts, dim=-1)


def reference_encoder(reference: DiscretePolicy) -> Encoder:
    """The trained reference's image encoders, frozen: the features its own head sees."""
    reference.eval()

    @torch.no_grad()
    def encode(batch: Batch) -> torch.Tensor:
        return torch.cat(reference.image_features(batch), dim=-1)

    return encode


def resolve_mode(settings: FeatureSettings) -> FeatureMode:
    """`auto` -> imagenet when its weights are on disk, else reference; imagenet without weights is an error."""
    if settings.mode == "off":
        return "off"
    have = imagenet_weights_path(settings.weights)
    if settings.mode == "imagenet" and have is None:
        raise ConfigError(
            "features.mode=imagenet needs ResNet-18 ImageNet weights on disk (torch hub cache or "
            "features.weights=FILE); use features.mode=reference to encode with the reference's own encoder"
        )
    if settings.mode == "auto":
        return "imagenet" if have is not None else "reference"
    return settings.mode


def _is_image_key(key: str) -> bool:
    return key.startswith("images/") or (key.startswith("goal/") and key != "goal/state")


@torch.no_grad()
def encode_windows(
    windows: EncodedWindows,
    tensors: Batch | None,
    encoder: Encoder,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> Batch:
    """Every window once through `encoder`: its tensors with the images replaced by `features` (N, F).

    The result is small (no images) and lives in memory on `device`; batches index it like the
    in-memory tensors of the full mode.
    """
    from remix.core.train import index_batches, to_device

    parts: dict[str, list[torch.Tensor]] = {}
    for batch in index_batches(windows, tensors, np.arange(len(windows)), batch_size, num_workers):
        batch = to_device(batch, device)
        kept = {k: v for k, v in batch.items() if not _is_image_key(k)}
        kept["features"] = encoder(batch).float()
        for key, value in kept.items():
            parts.setdefault(key, []).append(value)
    return {key: torch.cat(values) for key, values in parts.items()}
