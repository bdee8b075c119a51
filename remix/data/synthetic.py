"""Small multi-domain robot datasets with structure you control, for tests and the README demo.

Every episode is a goal-reaching motion of an end effector. The state is the 7-d EE pose
(x, y, z in m, roll, pitch, yaw in rad, gripper 0..1 with 1 = open); a goal pose is drawn per episode
and the expert's action is a proportional step toward it, clipped to BridgeData-like step limits
(0.05 m, 0.25 rad), with the gripper closing once near the goal. The executed action moves the state,
so an episode's last frame is close to its goal and hindsight goal relabeling gives a learnable
(state, goal) -> action map. Per domain you choose:

- `action_noise`: std of Gaussian noise added to the expert action, as a fraction of the step limit;
- `pure_noise`: actions are i.i.d. Gaussian, unrelated to state or goal (a domain with nothing to learn);
- `action_scale`: recorded actions are multiplied by it (e.g. 100 for centimetres instead of metres);
- `image_size`: if > 0, a small rendered camera image per step (`images/cam0`), coloured per domain;
- `scenes`: per-episode `scene` values, to build a Bridge-like store whose domains are scenes.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from remix.data.store import DEFAULT_ACTION_NAMES, EpisodeStore

STATE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
STEP_LIMITS = np.array([0.05, 0.05, 0.05, 0.25, 0.25, 0.25], dtype=np.float32)
WORKSPACE_LOW = np.array([0.15, -0.15, 0.02], dtype=np.float32)
WORKSPACE_HIGH = np.array([0.45, 0.15, 0.25], dtype=np.float32)
GAIN = 0.5
CAMERA = "cam0"


@dataclass(frozen=True)
class SyntheticDomain:
    """How one domain's episodes are generated."""

    name: str
    num_episodes: int = 20
    episode_length: int = 25
    action_noise: float = 0.05
    pure_noise: bool = False
    action_scale: float = 1.0
    image_size: int = 0
    scenes: tuple[str, ...] = ()
    task: str = "reach the target"


DEFAULT_DOMAINS: tuple[SyntheticDomain, ...] = (
    SyntheticDomain("clean", num_episodes=30, action_noise=0.05),
    SyntheticDomain("noisy", num_episodes=40, action_noise=0.6),
    SyntheticDomain("random", num_episodes=40, pure_noise=True),
    SyntheticDomain("centimetres", num_episodes=20, action_noise=0.05, action_scale=100.0),
)
"""The built-in dataset: a clean domain, a noisy one, one of pure noise and one recorded in cm."""


def _domain_colour(name: str) -> tuple[int, int, int]:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return tuple(int(c) for c in rng.integers(40, 200, size=3))


def render_state(state: np.ndarray, size: int, background: tuple[int, int, int]) -> np.ndarray:
    """A top-down view: a disc at the EE's (x, y), its radius growing with z, filled when the gripper is open."""
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = background
    span = WORKSPACE_HIGH - WORKSPACE_LOW
    u = int(np.clip((state[1] - WORKSPACE_LOW[1]) / span[1], 0, 1) * (size - 1))
    v = int(np.clip((state[0] - WORKSPACE_LOW[0]) / span[0], 0, 1) * (size - 1))
    radius = max(1, int(size * (0.04 + 0.08 * np.clip((state[2] - WORKSPACE_LOW[2]) / span[2], 0, 1))))
    thickness = -1 if state[6] > 0.5 else max(1, size // 32)
    cv2.circle(image, (u, v), radius, (255, 255, 255), thickness)
    angle = float(state[5])
    tip = (int(u + 2 * radius * np.cos(angle)), int(v + 2 * radius * np.sin(angle)))
    cv2.line(image, (u, v), tip, (255, 80, 80), max(1, size // 32))
    return image


def generate_episode(domain: SyntheticDomain, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One episode's arrays: `action` (T, 7), `state` (T, 7) and optionally `images/cam0`."""
    length = domain.episode_length
    state = np.zeros(7, dtype=np.float32)
    state[:3] = rng.uniform(WORKSPACE_LOW, WORKSPACE_HIGH)
    state[3:6] = rng.uniform(-0.5, 0.5, size=3)
    state[6] = 1.0
    goal = np.concatenate([rng.uniform(WORKSPACE_LOW, WORKSPACE_HIGH), rng.uniform(-0.5, 0.5, size=3)])
    states = np.empty((length, 7), dtype=np.float32)
    actions = np.empty((length, 7), dtype=np.float32)
    for t in range(length):
        states[t] = state
        if domain.pure_noise:
            motion = rng.normal(0.0, 1.0, size=6) * STEP_LIMITS
            gripper = float(rng.uniform() < 0.5)
        else:
            motion = np.clip(GAIN * (goal - state[:6]), -STEP_LIMITS, STEP_LIMITS)
            motion = motion + rng.normal(0.0, domain.action_noise, size=6) * STEP_LIMITS
            gripper = 0.0 if np.linalg.norm(goal[:3] - state[:3]) < 0.02 else 1.0
        actions[t, :6] = motion
        actions[t, 6] = gripper
        state = state.copy()
        state[:3] = np.clip(state[:3] + motion[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
        state[3:6] = state[3:6] + motion[3:]
        state[6] = gripper
    recorded = actions.copy()
    recorded[:, :6] *= domain.action_scale
    episode = {"action": recorded, "state": states}
    if domain.image_size > 0:
        colour = _domain_colour(domain.name)
        episode[f"images/{CAMERA}"] = np.stack([render_state(s, domain.image_size, colour) for s in states])
    return episode


def make_synthetic_store(
    path: str | Path,
    domains: SyntheticDomain | Sequence[SyntheticDomain],
    seed: int = 0,
    fps: float = 5.0,
    overwrite: bool = True,
) -> EpisodeStore:
    """Write the episodes of one or more domains into one store (per-episode `domain`, `scene`, `task`)."""
    domains = (domains,) if isinstance(domains, SyntheticDomain) else tuple(domains)
    sizes = {d.image_size for d in domains}
    if len(sizes) != 1:
        raise ValueError(f"domains in one store must share image_size, got {sorted(sizes)}")
    image_size = sizes.pop()
    store = EpisodeStore.create(
        path,
        fps=fps,
        robot="synthetic",
        action_names=DEFAULT_ACTION_NAMES,
        gripper_dims=(6,),
        cameras={CAMERA: (image_size, image_size)} if image_size else {},
        state_names=STATE_NAMES,
        overwrite=overwrite,
    )
    rng = np.random.default_rng(seed)
    for domain in domains:
        for index in range(domain.num_episodes):
            scene = domain.scenes[index % len(domain.scenes)] if domain.scenes else domain.name
            store.add_episode(
                generate_episode(domain, rng), domain=domain.name, scene=scene, task=domain.task, operator="synthetic"
            )
    return store


def make_synthetic_dataset(
    root: str | Path,
    domains: Sequence[SyntheticDomain] = DEFAULT_DOMAINS,
    seed: int = 0,
    image_size: int | None = None,
    episode_length: int | None = None,
) -> list[Path]:
    """One store per domain under `root` (`<name>.zarr`), the OpenX-style layout; returns their paths."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset, domain in enumerate(domains):
        overrides: dict[str, int] = {}
        if image_size is not None:
            overrides["image_size"] = image_size
        if episode_length is not None:
            overrides["episode_length"] = episode_length
        path = root / f"{domain.name}.zarr"
        make_synthetic_store(path, replace(domain, **overrides), seed=seed + offset)
        paths.append(path)
    return paths


__all__ = [
    "DEFAULT_DOMAINS",
    "STATE_NAMES",
    "SyntheticDomain",
    "generate_episode",
    "make_synthetic_dataset",
    "make_synthetic_store",
    "render_state",
]
