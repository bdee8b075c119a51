"""The model's shape and diffusion settings, stored in every checkpoint so it can be rebuilt exactly."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from remix.common.errors import ConfigError

ENCODERS = ("tiny", "small", "resnet18", "resnet34", "resnet50")
POOLS = ("avg", "spatial_softmax")
NORMS = ("batch", "group")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the network and its noise schedule.

    The goal enters by channel concatenation: each history frame is stacked with the goal image and
    two pixel-coordinate channels (8 channels in [-1, 1]) before the encoder, so the encoder compares
    "now" with "goal" at every pixel; the per-frame embeddings (one per frame and camera) are
    concatenated, optionally with the normalized proprio state, and condition the diffusion head.

    `prediction_type` is what the head predicts: "sample" (the clean chunk; default) or "epsilon"
    (the noise, as in DDPM/BridgeData) or "v_prediction". All three are the same diffusion model with
    different loss weighting; on our CPU benchmarks "sample" reached a given action error in far
    fewer steps than "epsilon", whose high-noise steps amplify small errors (see docs/policy.md).
    """

    cameras: tuple[str, ...] = ("cam0",)
    image_size: tuple[int, int] = (64, 64)
    n_obs: int = 2
    horizon: int = 4
    action_dim: int = 7
    use_state: bool = False
    state_dim: int = 7
    encoder: str = "resnet18"  # tiny (tests) | small (CPU) | resnet18 | resnet34 | resnet50
    norm: str = "group"
    pool: str = "avg"  # avg: global average of the feature map | spatial_softmax: keypoint (x, y) positions
    keypoints: int = 32  # spatial_softmax: number of keypoints (2 features each)
    embed_dim: int = 512
    hidden_dim: int = 256
    num_blocks: int = 3
    time_dim: int = 32
    dropout: float = 0.1
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"
    clip_range: float = 5.0

    def __post_init__(self) -> None:
        problems = []
        if not self.cameras:
            problems.append("cameras must name at least one camera")
        if len(self.image_size) != 2 or min(self.image_size) < 16 or max(self.image_size) > 1024:
            problems.append(f"image_size must be [height, width] in 16..1024, got {list(self.image_size)}")
        if self.encoder not in ENCODERS:
            problems.append(f"encoder {self.encoder!r} is not one of {list(ENCODERS)}")
        if self.pool not in POOLS:
            problems.append(f"pool {self.pool!r} is not one of {list(POOLS)}")
        if self.norm not in NORMS:
            problems.append(f"norm {self.norm!r} is not one of {list(NORMS)}")
        if self.prediction_type not in PREDICTION_TYPES:
            problems.append(f"prediction_type {self.prediction_type!r} is not one of {list(PREDICTION_TYPES)}")
        if self.beta_schedule not in BETA_SCHEDULES:
            problems.append(f"beta_schedule {self.beta_schedule!r} is not one of {list(BETA_SCHEDULES)}")
        for name in ("n_obs", "horizon", "action_dim", "state_dim", "embed_dim", "hidden_dim", "num_blocks", "keypoints",
                     "time_dim", "num_train_timesteps"):
            # action_dim/state_dim None: remix-train's "read the width from the stores" (resolved before a net is built)
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.time_dim % 2:
            problems.append(f"time_dim must be even, got {self.time_dim}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.clip_range > 0:
            problems.append(f"clip_range must be > 0, got {self.clip_range}")
        if problems:
            raise ConfigError("bad model config: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a config mapping; unknown keys are an error (they are usually typos)."""
        known = {f.name for f in fields(cls)}
        if "use_proprio" in values:  # config.json of a checkpoint saved before the key was renamed
            values = {("use_state" if k == "use_proprio" else k): v for k, v in values.items()}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys {unknown}; known keys are {sorted(known)}")
        values = dict(values)
        for name in ("cameras", "image_size"):
            if name in values:
                raw = values[name]
                values[name] = (raw,) if isinstance(raw, str | int) else tuple(raw)
        if "image_size" in values:
            values["image_size"] = tuple(int(v) for v in values["image_size"])
        return cls(**values)
