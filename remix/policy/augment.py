"""Image augmentation for training, split so that it costs almost nothing in the data loader.

A DataLoader worker only *draws* each sample's parameters (crop box, brightness, contrast, hue shift)
from the sample's seed; `apply_augmentation` then transforms the whole batch at once on the training
device. One parameter set per sample is applied to all its history frames, cameras and its goal
image, so the goal is always cropped and coloured exactly like the observations it is compared with.
Doing this per sample on the CPU with torchvision's colour ops cost ~40 ms per 224x224 sample (hue
alone ~23 ms), far more than reading the window; batched here it is a few tensor ops.

Ops: random resized crop and random shift (one bilinear resampling of a crop box, which a shift
moves partly outside the image, edge pixels repeated, as DrQ's pad-and-crop does), brightness
(scale), contrast (blend with the image's mean grey, as torchvision does) and hue (a rotation of the
chroma plane in YIQ space, the linear approximation of an HSV hue shift). A shift leaves the scale of
the scene alone, so the apparent size and position of the gripper and objects stay informative; at
inference no crop is applied (the unshifted frame is the centre of the shifted ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NUM_PARAMS = 7  # x0, y0, x1, y1 (fractions of the image), brightness, contrast, hue (fraction of a turn)

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_GREY = torch.tensor([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True
    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.2
    contrast: float = 0.2
    hue: float = 0.05
    shift: float = 0.0  # random translation, up to this fraction of the image size each way (DrQ: 4/84)


def identity_params() -> torch.Tensor:
    return torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0])


def draw_params(config: AugmentConfig, aspect: float, generator: torch.Generator) -> torch.Tensor:
    """One sample's parameters (7,), like torchvision's RandomResizedCrop + ColorJitter would draw them.

    `aspect` is the image's width / height; the crop covers `crop_scale` of the area with an aspect
    ratio (in pixels) log-uniform in `crop_ratio`; factors are uniform in [1 - b, 1 + b].
    """
    if not config.enabled:
        return identity_params()
    u = torch.rand(6, generator=generator).tolist()
    area = config.crop_scale[0] + u[0] * (config.crop_scale[1] - config.crop_scale[0])
    log_lo, log_hi = math.log(config.crop_ratio[0]), math.log(config.crop_ratio[1])
    ratio = math.exp(log_lo + u[1] * (log_hi - log_lo))
    width = min(1.0, math.sqrt(area * ratio / aspect))
    height = min(1.0, math.sqrt(area / ratio * aspect))
    x0, y0 = u[2] * (1.0 - width), u[3] * (1.0 - height)
    if config.shift > 0:
        dx, dy = (config.shift * (2 * torch.rand(2, generator=generator) - 1)).tolist()
        x0, y0 = x0 + dx, y0 + dy
    brightness = 1.0 + config.brightness * (2 * u[4] - 1)
    contrast = 1.0 + config.contrast * (2 * u[5] - 1)
    hue = config.hue * (2 * float(torch.rand(1, generator=generator)) - 1)
    return torch.tensor([x0, y0, x0 + width, y0 + height, brightness, contrast, hue])


def apply_augmentation(images: torch.Tensor, goal: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch: images (B, cams, T, 3, H, W) and goal (B, cams, 3, H, W), uint8 or float in
    [0, 255]; params (B, 7). Returns float tensors in [0, 255] of the same shapes."""
    batch, cams, frames, _, height, width = images.shape
    stacked = torch.cat([images.float(), goal.float()[:, :, None]], dim=2)  # (B, cams, T + 1, 3, H, W)
    per_sample = cams * (frames + 1)
    flat = stacked.reshape(batch * per_sample, 3, height, width)
    p = params.to(flat.device, torch.float32).repeat_interleave(per_sample, dim=0)

    theta = torch.zeros(len(flat), 2, 3, device=flat.device, dtype=flat.dtype)  # box -> affine in [-1, 1] units
    theta[:, 0, 0], theta[:, 0, 2] = p[:, 2] - p[:, 0], p[:, 0] + p[:, 2] - 1
    theta[:, 1, 1], theta[:, 1, 2] = p[:, 3] - p[:, 1], p[:, 1] + p[:, 3] - 1
    grid = F.affine_grid(theta, [len(flat), 3, height, width], align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="border", align_corners=False)

    out = out * p[:, 4, None, None, None]
    grey = torch.einsum("c,nchw->nhw", _GREY.to(out), out).mean(dim=(1, 2))[:, None, None, None]
    out = (out - grey) * p[:, 5, None, None, None] + grey
    out = out.clamp(0, 255)

    angle = 2 * math.pi * p[:, 6]
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.zeros(len(out), 3, 3, device=out.device, dtype=out.dtype)
    rotation[:, 0, 0] = 1.0
    rotation[:, 1, 1], rotation[:, 1, 2], rotation[:, 2, 1], rotation[:, 2, 2] = cos, -sin, sin, cos
    to_yiq = _RGB_TO_YIQ.to(out)
    transform = torch.linalg.inv(to_yiq) @ rotation @ to_yiq  # (N, 3, 3) per image
    out = torch.einsum("nij,njhw->nihw", transform, out).clamp(0, 255)

    out = out.reshape(batch, cams, frames + 1, 3, height, width)
    return out[:, :, :frames], out[:, :, frames]
