"""The goal-conditioned diffusion policy network (Re-Mix appendix C, after BridgeData V2).

Image path: every history frame of every camera is concatenated channel-wise with that camera's goal
image and an (x, y) pixel-coordinate grid, all in [-1, 1] (8 channels), and encoded by a ResNet
(torchvision 18/34/50, BatchNorm or GroupNorm) or a small conv net (CPU budgets; `tiny` for tests),
whose feature map is pooled to spatial-softmax keypoints (where things are) or averaged globally.
The per-frame embeddings are concatenated (plus the normalized proprio state when enabled) into the
condition vector of a residual-MLP denoiser that predicts the noise of a normalized action chunk.
Noise schedules and sampling steps come from diffusers (DDPM for training, DDPM or DDIM sampling).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from remix.common.errors import ConfigError
from remix.policy.config import ModelConfig

IN_CHANNELS = 8  # observation RGB + goal RGB + (x, y) pixel coordinates


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(min(32, channels // 4) or 1, channels)
    return nn.BatchNorm2d(channels)


def coordinate_grid(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """(2, H, W) pixel coordinates (x then y), each spanning [-1, 1]."""
    ys = torch.linspace(-1.0, 1.0, height, device=device)
    xs = torch.linspace(-1.0, 1.0, width, device=device)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])


class SpatialSoftmax(nn.Module):
    """Feature map -> the expected (x, y) image position of `keypoints` learned attention maps.

    This keeps *where* things are, which global average pooling throws away: robomimic and diffusion
    policy end their ResNet encoders this way for manipulation. Output: (N, 2 * keypoints) in [-1, 1].
    """

    def __init__(self, channels: int, keypoints: int) -> None:
        super().__init__()
        self.keypoints = nn.Conv2d(channels, keypoints, kernel_size=1)
        self.out_dim = 2 * keypoints

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.keypoints(features)
        height, width = maps.shape[-2:]
        attention = torch.softmax(maps.flatten(2), dim=-1)  # (N, K, H*W)
        grid = coordinate_grid(height, width, maps.device).flatten(1)  # (2, H*W)
        return torch.einsum("nkp,cp->nkc", attention, grid).flatten(1)


def conv_stack(norm: str, stages: tuple[tuple[int, int], ...]) -> tuple[nn.Sequential, int]:
    """3x3 conv + norm + SiLU per (channels, stride) stage, from the 8 input channels."""
    layers: list[nn.Module] = []
    channels = IN_CHANNELS
    for out, stride in stages:
        layers += [nn.Conv2d(channels, out, 3, stride=stride, padding=1), norm_layer(norm, out), nn.SiLU()]
        channels = out
    return nn.Sequential(*layers), channels


# tiny: four stride-2 blocks, a few thousand parameters, for tests and smoke runs.
# small: a CPU-sized net that keeps a fine map (1/4 of the input) for spatial softmax: at 64x64 it costs
# about 1/15 of a ResNet-18 and its 16x16 map places keypoints to about a pixel (ResNet-18's map is 2x2).
CONV_STAGES = {
    "tiny": ((16, 2), (32, 2), (32, 2), (64, 2)),
    "small": ((32, 2), (32, 2), (64, 1)),
}


class ResNetTrunk(nn.Module):
    """A torchvision ResNet taking 8 input channels, ending at its last feature map (no pooling, no
    classifier). Its parameter names are torchvision's, so ImageNet state dicts load by name."""

    def __init__(self, name: str, norm: str) -> None:
        super().__init__()
        kwargs = {"norm_layer": (lambda c: norm_layer("group", c))} if norm == "group" else {}
        net = getattr(torchvision.models, name)(weights=None, **kwargs)
        self.conv1 = nn.Conv2d(IN_CHANNELS, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1, self.relu, self.maxpool = net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        self.out_channels = net.fc.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ImageEncoder(nn.Module):
    """Trunk (conv net or ResNet) then pooling: global average or spatial-softmax keypoints."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.encoder in CONV_STAGES:
            self.trunk, channels = conv_stack(config.norm, CONV_STAGES[config.encoder])
        else:
            self.trunk = ResNetTrunk(config.encoder, config.norm)
            channels = self.trunk.out_channels
        if config.pool == "spatial_softmax":
            self.pool: nn.Module = SpatialSoftmax(channels, config.keypoints)
            self.out_dim = 2 * config.keypoints
        else:
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.out_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.trunk(x))


def load_imagenet_weights(encoder: nn.Module, path: str | Path) -> list[str]:
    """Initialize a ResNet encoder from a torchvision ImageNet state dict file the user already has.

    The RGB filters of `conv1` initialize both the observation and the goal channels (each half),
    coordinate channels start at zero; BatchNorm running statistics are skipped for GroupNorm
    models. Returns the names of weights that were not loaded.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"pretrained encoder weights {path} do not exist; give the path of a torchvision "
                          "ResNet state dict (.pth) or set model_init.pretrained=null")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise ConfigError(f"cannot read pretrained weights {path} ({type(error).__name__}); "
                          "give a torchvision state dict saved with torch.save") from None
    own = encoder.state_dict()
    rgb = state.get("conv1.weight")
    if rgb is not None and rgb.shape[1] == 3:
        conv = torch.zeros_like(own["conv1.weight"])
        conv[:, 0:3] = rgb / 2
        conv[:, 3:6] = rgb / 2
        state = {**state, "conv1.weight": conv}
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ConfigError(f"{path} holds no weights for this encoder; pass weights of the same ResNet depth")
    encoder.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


class SinusoidalEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        angles = t.float()[:, None] * freqs[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """Pre-LayerNorm MLP block with a skip connection (the IDQL/BridgeData diffusion head)."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class DiffusionPolicyNet(nn.Module):
    """Observation encoder + noise-prediction head for normalized action chunks."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = ImageEncoder(config)
        feature_dim = self.encoder.out_dim
        self.project = nn.Identity() if feature_dim == config.embed_dim else nn.Linear(feature_dim, config.embed_dim)
        self.register_buffer("coords", coordinate_grid(*config.image_size), persistent=False)
        cond_dim = config.embed_dim * config.n_obs * len(config.cameras)
        if config.use_state:
            cond_dim += config.state_dim * config.n_obs
        chunk_dim = config.horizon * config.action_dim
        self.time_embed = nn.Sequential(SinusoidalEmbedding(config.time_dim), nn.Linear(config.time_dim, 2 * config.time_dim),
                                        nn.SiLU(), nn.Linear(2 * config.time_dim, config.time_dim))
        self.input = nn.Linear(chunk_dim + cond_dim + config.time_dim, config.hidden_dim)
        self.blocks = nn.Sequential(*[ResidualBlock(config.hidden_dim, config.dropout) for _ in range(config.num_blocks)])
        self.output = nn.Sequential(nn.LayerNorm(config.hidden_dim), nn.SiLU(), nn.Linear(config.hidden_dim, chunk_dim))

    def encode(self, images: torch.Tensor, goal: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """Condition vector from uint8 images.

        images: (B, cameras, n_obs, 3, H, W) uint8; goal: (B, cameras, 3, H, W) uint8;
        state: (B, n_obs, state_dim) normalized, only when `use_state`.
        """
        return self.condition(self.frame_features(images, goal), state)

    def frame_features(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Embedding of every (frame, camera) stacked with its goal: (B, cameras, frames, embed_dim).

        A frame's embedding depends only on the frame and the goal, so a rollout can keep it for the
        next step instead of re-encoding the whole history.
        """
        batch, cams, frames, _, height, width = images.shape
        if (height, width) != tuple(self.config.image_size):
            raise ValueError(f"images are {height}x{width}, the model expects {self.config.image_size}")
        obs = images.float() / 127.5 - 1.0
        goals = (goal.float() / 127.5 - 1.0)[:, :, None].expand(-1, -1, frames, -1, -1, -1)
        coords = self.coords[None, None, None].expand(batch, cams, frames, -1, -1, -1)
        stacked = torch.cat([obs, goals, coords], dim=3).reshape(batch * cams * frames, IN_CHANNELS, height, width)
        return self.project(self.encoder(stacked)).reshape(batch, cams, frames, -1)

    def condition(self, features: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """Concatenate frame embeddings (B, cameras, n_obs, embed_dim) and, with proprio, the state."""
        batch = features.shape[0]
        flat = features.reshape(batch, -1)
        if self.config.use_state:
            if state is None:
                raise ValueError("this model uses proprio state but none was given")
            flat = torch.cat([flat, state.reshape(batch, -1)], dim=1)
        return flat

    def forward(self, noisy_actions: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Predict the noise in `noisy_actions` (B, horizon, action_dim) at diffusion `timesteps` (B,)."""
        batch = noisy_actions.shape[0]
        x = torch.cat([noisy_actions.reshape(batch, -1), condition, self.time_embed(timesteps)], dim=1)
        out = self.output(self.blocks(self.input(x)))
        return out.reshape(noisy_actions.shape)


def make_scheduler(config: ModelConfig, kind: str = "ddpm") -> DDPMScheduler | DDIMScheduler:
    """The diffusers noise scheduler for training ("ddpm") or sampling ("ddpm" or "ddim")."""
    common = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                  clip_sample=True, clip_sample_range=config.clip_range, prediction_type=config.prediction_type)
    if kind == "ddpm":
        return DDPMScheduler(**common)
    if kind == "ddim":
        return DDIMScheduler(**common, set_alpha_to_one=True, steps_offset=0)
    raise ConfigError(f"unknown sampler {kind!r}; use 'ddpm' or 'ddim'")


def diffusion_loss(net: nn.Module, scheduler: DDPMScheduler, condition: torch.Tensor, actions: torch.Tensor,
                   valid: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoising MSE per sample (B,), averaged over valid (non-padded) chunk steps.

    The target follows the scheduler's prediction type: the noise ("epsilon"), the clean chunk
    ("sample") or the velocity ("v_prediction").
    """
    noise = torch.randn(actions.shape, generator=generator, device=actions.device)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (actions.shape[0],), generator=generator,
                              device=actions.device)
    noisy = scheduler.add_noise(actions, noise, timesteps)
    kind = scheduler.config.prediction_type
    target = {"epsilon": noise, "sample": actions}.get(kind)
    if target is None:
        target = scheduler.get_velocity(actions, noise, timesteps)
    error = F.mse_loss(net(noisy, timesteps, condition), target, reduction="none").mean(dim=2)
    mask = valid.float()
    return (error * mask).sum(1) / mask.sum(1).clamp_min(1.0)


@torch.no_grad()
def sample_actions(net: nn.Module, scheduler: DDPMScheduler | DDIMScheduler, condition: torch.Tensor,
                   num_steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoise a normalized action chunk (B, horizon, action_dim) from Gaussian noise."""
    config: ModelConfig = net.config
    shape = (condition.shape[0], config.horizon, config.action_dim)
    sample = torch.randn(shape, generator=generator, device=condition.device)
    scheduler.set_timesteps(num_steps, device=condition.device)
    for t in scheduler.timesteps:
        timesteps = torch.full((shape[0],), int(t), device=condition.device, dtype=torch.long)
        eps = net(sample, timesteps, condition)
        sample = scheduler.step(eps, t, sample, generator=generator).prev_sample
    return sample
