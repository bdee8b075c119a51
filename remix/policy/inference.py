"""Run a trained diffusion policy: `DiffusionPolicy.load(checkpoint)` then `reset(goal)` / `act(obs)`.

Each `act` feeds the newest observation into an `n_obs`-frame history (the first frame is repeated
until the history is full, exactly like the training windows at episode starts), and returns one
action in the target domain's robot units. Two ways to turn predicted chunks into actions:

- "chunk": predict a chunk, execute its first `exec_horizon` actions open loop, then predict again
  (receding horizon: by default three quarters of the chunk, so the policy re-plans from fresh
  observations while the chunk keeps its motion consistent; the default). Measured on the sim's
  lift_red (recipe=cpu, 8-step chunks, 50 unseen scenes): executing 6 succeeded 42/50 where 4 gave
  35-36/50, 8 gave 34-40/50, 2 gave 29/50 and 1 gave 21/50: re-planning every step dithers;
  never re-planning cannot correct;
- "ensemble": predict a chunk every step and average all chunks' predictions for the current step
  with weights exp(-k * age), newest first (temporal ensembling, smoother motion).

Gripper dimensions are binarized at execution (open above 0.5, closed below) unless
`binarize_gripper=False`: demonstrations command the gripper fully open or closed, and a sampled 0.6
would leave it half open around the object. Camera frames must have the trained size: a different
size is an error, not a silent resize (which would change what the policy sees).

Sampling noise comes from a generator re-seeded at every `reset`, so the same goal and observations
give the same actions on the same device.
"""

from __future__ import annotations

import inspect
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from remix.common.errors import ConfigError, RemixError
from remix.policy.base import Policy, validate_action
from remix.policy.checkpoint import load_checkpoint
from remix.policy.model import DiffusionPolicyNet, make_scheduler, sample_actions
from remix.policy.normalization import Normalization

if TYPE_CHECKING:
    from robots.robot import Observation

EXECUTIONS = ("chunk", "ensemble")


@dataclass
class _Frame:
    """One history entry; `features` is filled the first time the frame is encoded, then reused."""

    images: torch.Tensor  # (cameras, 3, H, W) uint8
    state: np.ndarray  # normalized proprio state
    features: torch.Tensor | None = None  # (cameras, embed_dim)


class DiffusionPolicy(Policy):
    """A checkpointed goal-conditioned diffusion policy behind the `Policy` API."""

    def __init__(self, net: DiffusionPolicyNet, normalization: Normalization, *, device: str | torch.device = "cpu",
                 seed: int = 0, sampler: str = "ddim", inference_steps: int = 10, execution: str = "chunk",
                 exec_horizon: int | None = None, ensemble_decay: float = 0.1, domain: str | None = None,
                 binarize_gripper: bool = True, source: str = "diffusion policy") -> None:
        self.config = net.config
        if execution not in EXECUTIONS:
            raise ConfigError(f"unknown execution {execution!r}; use one of {list(EXECUTIONS)}")
        horizon = self.config.horizon
        self.exec_horizon = max(1, 3 * horizon // 4) if exec_horizon is None else int(exec_horizon)
        if not 1 <= self.exec_horizon <= horizon:
            raise ConfigError(f"exec_horizon must be in 1..{horizon} (the trained chunk length), got {exec_horizon}")
        if inference_steps < 1:
            raise ConfigError(f"inference_steps must be >= 1, got {inference_steps}")
        if sampler == "ddim" and inference_steps > self.config.num_train_timesteps:
            raise ConfigError(f"inference_steps={inference_steps} exceeds the {self.config.num_train_timesteps} "
                              "training timesteps; use fewer")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device={device} but no CUDA GPU is visible; use device=cpu")
        self.net = net.to(self.device).eval()
        self.normalization = normalization if domain is None else normalization.with_target(domain)
        self.scheduler = make_scheduler(self.config, sampler)
        self.inference_steps = self.config.num_train_timesteps if sampler == "ddpm" else int(inference_steps)
        self.execution = execution
        self.ensemble_decay = float(ensemble_decay)
        self.seed = int(seed)
        self.source = source
        self.binarize_gripper = bool(binarize_gripper)
        self.generator = torch.Generator(device=self.device)
        self._goal: torch.Tensor | None = None
        self._history: deque[_Frame] = deque(maxlen=self.config.n_obs)
        self._queue: deque[np.ndarray] = deque()
        self._chunks: deque[tuple[int, np.ndarray]] = deque()
        self._t = 0

    @classmethod
    def load(cls, path: str | Path, **options: Any) -> DiffusionPolicy:
        """Build from a checkpoint directory; `options` are the keyword arguments of the constructor."""
        allowed = sorted(set(inspect.signature(cls.__init__).parameters) - {"self", "net", "normalization", "source"})
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown policy options {unknown}; checkpoint policies take {allowed}")
        weights, model_config, normalization, _meta = load_checkpoint(path)
        net = DiffusionPolicyNet(model_config)
        try:
            net.load_state_dict(weights)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise RemixError(f"checkpoint {path} weights do not fit its model config ({first}); "
                             "the checkpoint is corrupt or was edited, use another one") from None
        return cls(net, normalization, source=f"policy {path}", **options)

    @property
    def target_domain(self) -> str:
        return self.normalization.target_domain

    def _camera_images(self, observation: Observation, what: str) -> torch.Tensor:
        missing = [c for c in self.config.cameras if c not in observation.images]
        if missing:
            raise RemixError(f"{what} has no images from cameras {missing} (it has {sorted(observation.images)}); "
                             "the policy was trained on those cameras, configure the robot to provide them")
        frames = []
        for camera in self.config.cameras:
            image = np.asarray(observation.images[camera])
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise RemixError(f"{what} image {camera!r} is {image.dtype} {image.shape}; expected uint8 HxWx3")
            if image.shape[:2] != tuple(self.config.image_size):
                height, width = self.config.image_size
                raise RemixError(f"{what} image {camera!r} is {image.shape[0]}x{image.shape[1]} but the policy was "
                                 f"trained on {height}x{width}; configure the camera as {camera}: [{height}, {width}]")
            frames.append(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        return torch.stack(frames)

    def _proprio_state(self, observation: Observation) -> np.ndarray:
        state = np.asarray(observation.state, np.float32).reshape(-1)
        if state.shape != (self.config.state_dim,):
            raise RemixError(f"observation state has {state.size} values but the policy was trained on "
                             f"{self.config.state_dim}-d states; give it the robot state it was trained with")
        return self.normalization.normalize_state(state)

    def reset(self, goal: Observation) -> None:
        self._goal = self._camera_images(goal, "goal observation")
        self._history.clear()
        self._queue.clear()
        self._chunks.clear()
        self._t = 0
        self.generator.manual_seed(self.seed)

    @torch.no_grad()
    def predict_chunk(self) -> np.ndarray:
        """Sample one action chunk (horizon, action_dim) in robot units from the current history."""
        assert self._goal is not None
        new = list({id(f): f for f in self._history if f.features is None}.values())
        if new:  # encode only frames not seen before (with temporal ensembling: just the newest)
            images = torch.stack([f.images for f in new], dim=1)[None].to(self.device)
            features = self.net.frame_features(images, self._goal[None].to(self.device))[0]
            for index, frame in enumerate(new):
                frame.features = features[:, index]
        stacked = torch.stack([f.features for f in self._history], dim=1)[None]
        state = None
        if self.config.use_state:
            state = torch.from_numpy(np.stack([f.state for f in self._history]))[None].to(self.device)
        condition = self.net.condition(stacked, state)
        normalized = sample_actions(self.net, self.scheduler, condition, self.inference_steps, self.generator)
        return self.normalization.unnormalize_actions(normalized[0].cpu().numpy())

    def act(self, observation: Observation) -> np.ndarray:
        if self._goal is None:
            raise RemixError("act() before reset(goal): call policy.reset(goal_observation) at the start of each episode")
        frame = self._camera_images(observation, "observation")
        state = self._proprio_state(observation) if self.config.use_state else np.zeros(0, np.float32)
        self._history.append(_Frame(frame, state))
        while len(self._history) < self.config.n_obs:
            self._history.appendleft(self._history[0])
        if self.execution == "chunk":
            if not self._queue:
                self._queue.extend(self.predict_chunk()[: self.exec_horizon])
            action = self._queue.popleft()
        else:
            self._chunks.append((self._t, self.predict_chunk()))
            while self._chunks and self._t - self._chunks[0][0] >= self.config.horizon:
                self._chunks.popleft()
            predictions = np.stack([chunk[self._t - start] for start, chunk in self._chunks])
            ages = np.array([self._t - start for start, _ in self._chunks], dtype=np.float64)
            weights = np.exp(-self.ensemble_decay * ages)
            action = (weights[:, None] * predictions).sum(0) / weights.sum()
        self._t += 1
        if self.binarize_gripper:
            action = np.array(action, dtype=np.float32)
            for dim in self.normalization.actions.gripper_dims:
                action[dim] = 1.0 if action[dim] > 0.5 else 0.0
        return validate_action(action, self.source, self.config.action_dim)
