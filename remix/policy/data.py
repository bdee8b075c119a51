"""The training mixture: domains from episode stores, their weights, the co-training share, and the
dataset that turns windows into model inputs.

A domain is one store (named by the store's file stem) or, with `domain_key`, one value of that
per-episode field inside a store (e.g. Bridge scenes), found by the discovery remix-weights uses too
(`remix.data.domains`), so both commands see the same domains for the same stores. Pre-training
domains share `1 - cotrain_share` of the draws according to `weights` (Re-Mix `weights.json`, "size",
"uniform" or an explicit mapping; with `subset`, the subset stores written by remix-subset and, by
default, the exact Re-Mix weights recorded with them, as the paper trains on subsets);
every co-training store is a domain of its own and together they get `cotrain_share` (size-weighted
among themselves). Draws go through the Re-Mix core's `WeightedDomainSampler`, so "train on weights
w" means the same thing here as in the DRO stage.

Augmentation parameters (random resized crop, brightness, contrast, hue) are drawn once per sample,
from a seed carried by the sample stream, and later applied to the history frames and the goal image
together (`remix.policy.augment`), so the policy never sees a goal cropped differently from the
observation it is compared with; training is reproducible and a resumed run continues exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from torchvision.transforms import v2

from remix.common.errors import ConfigError
from remix.core.run import load_weights
from remix.data import EpisodeStore, WindowSampler
from remix.data.domains import discover_domains as find_domains
from remix.data.domains import split_domains
from remix.data.mixture import WeightedDomainSampler, normalize_weights
from remix.policy.augment import AugmentConfig, draw_params, identity_params
from remix.policy.config import ModelConfig
from remix.policy.normalization import Normalization


@dataclass(frozen=True)
class MixtureConfig:
    """Which stores, how their domains are weighted, and the co-training share."""

    paths: tuple[str, ...] = ()  # pre-training episode stores (each a domain, or split by domain_key)
    domain_key: str | None = None
    weights: str | Mapping[str, float] | None = None
    cotrain: tuple[str, ...] = ()
    cotrain_share: float = 0.05
    subset: str | None = None
    val_fraction: float = 0.05
    target_domain: str | None = None
    goal_relabel: float = 0.0  # share of training windows whose goal is a random later frame, not the last one
    cache_mb: float = 1024.0  # hold stores' frames in memory up to this many MB (a zarr read costs ~30 ms)

    def __post_init__(self) -> None:
        if not self.paths and not self.cotrain and not self.subset:
            raise ConfigError("no training data: set data.paths=[...] (or data.subset=...) and/or data.cotrain=[...]")
        if self.paths and self.subset:
            raise ConfigError("give either data.paths or data.subset (whose stores are used), not both")
        if not 0.0 <= self.cotrain_share <= 1.0:
            raise ConfigError(f"data.cotrain_share must be in [0, 1], got {self.cotrain_share}")
        if self.cotrain and self.paths and self.cotrain_share in (0.0, 1.0):
            raise ConfigError(f"data.cotrain_share={self.cotrain_share} would ignore half the data; "
                              "use a share strictly between 0 and 1, or drop the unused stores")
        if not 0.0 <= self.goal_relabel <= 1.0:
            raise ConfigError(f"data.goal_relabel must be in [0, 1], got {self.goal_relabel}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class Domain:
    """One domain: its episodes in one store, split into train and validation episodes."""

    name: str
    store: Path
    train_episodes: np.ndarray
    val_episodes: np.ndarray
    cotrain: bool
    num_train_steps: int = 0


def read_weights(spec: str | Mapping[str, float], names: Sequence[str], sizes: Sequence[int]) -> np.ndarray:
    """Weights of the pre-training domains (normalized), from a keyword, a mapping or a file.

    A file is a Re-Mix `weights.json` (or the remix-weights run directory) or a remix-subset
    `subset.json`, read with the Re-Mix core's `load_weights`.
    """
    if isinstance(spec, Mapping):
        mapping = {str(k): float(v) for k, v in spec.items()}
    elif spec == "size":
        return normalize_weights(sizes, len(sizes))
    elif spec == "uniform":
        return normalize_weights(np.ones(len(names)), len(names))
    else:
        path = Path(str(spec)).expanduser()
        if not path.exists():
            raise ConfigError(f"data.weights={spec!r} is neither size, uniform nor an existing weights.json; "
                              "pass one of those or a mapping {domain: weight}")
        document = load_weights(path)
        mapping = {str(k): float(v) for k, v in document["weights"].items()}
    missing = [n for n in names if n not in mapping]
    unknown = [n for n in mapping if n not in names]
    if missing or unknown:
        raise ConfigError(f"domain weights do not match the training domains (missing {missing}, unknown {unknown}); "
                          f"the domains are {list(names)}")
    return normalize_weights([mapping[n] for n in names], len(names))


def subset_file(spec: str | Path) -> Path:
    path = Path(spec).expanduser()
    return path / "subset.json" if path.is_dir() else path


def subset_stores(spec: str | Path) -> tuple[str, ...]:
    """The subset stores written by remix-subset, found next to its subset.json."""
    file = subset_file(spec)
    try:
        written = json.loads(file.read_text())["stores"]
        stores = [Path(p) for p in written.values()]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{file} is not a remix-subset subset.json ({type(error).__name__}); "
                          "pass the subset.json (or its directory) written by remix-subset") from None
    return tuple(str(p if p.exists() else file.parent / p.name) for p in stores)


def discover_domains(config: MixtureConfig, seed: int = 0) -> list[Domain]:
    """remix-train's domains: the shared discovery (`remix.data.domains`, as remix-weights finds them)
    over the pre-training stores (or the subset's) and the co-training stores, with the shared per-domain
    train/validation split."""
    pretrain = subset_stores(config.subset) if config.subset else config.paths
    sources = find_domains(pretrain, config.domain_key, cotrain=config.cotrain)
    domains: list[Domain] = []
    for source, (train, val) in zip(sources, split_domains(sources, config.val_fraction, seed)):
        lengths = EpisodeStore.open(source.path, mode="r").episode_lengths
        domains.append(Domain(source.name, source.path, train, val, source.cotrain, int(lengths[train].sum())))
    return domains


def mixture_weights(config: MixtureConfig, domains: Sequence[Domain]) -> np.ndarray:
    """Final draw probability per domain: pre-training weights scaled to 1 - share, co-training to share."""
    pre = [d for d in domains if not d.cotrain]
    co = [d for d in domains if d.cotrain]
    weights = np.zeros(len(domains))
    pre_share = 1.0 - config.cotrain_share if co else 1.0
    if pre:
        spec = config.weights if config.weights is not None else (subset_file(config.subset) if config.subset else "size")
        pre_w = read_weights(spec, [d.name for d in pre], [d.num_train_steps for d in pre])
        weights[: len(pre)] = pre_share * pre_w
    if co:
        co_share = config.cotrain_share if pre else 1.0
        weights[len(pre):] = co_share * normalize_weights([d.num_train_steps for d in co], len(co))
    return weights


def fit_normalization(domains: Sequence[Domain], model: ModelConfig, target: str | None) -> Normalization:
    """Per-domain statistics over each domain's training episodes; the default target is the first
    co-training domain (the robot being deployed), else the first domain."""
    actions, states = {}, {}
    gripper: tuple[int, ...] | None = None
    for domain in domains:
        store = EpisodeStore.open(domain.store, mode="r")
        if store.action_names and len(store.action_names) != model.action_dim:
            raise ConfigError(f"store {domain.store} has {len(store.action_names)}-d actions but the model "
                              f"predicts {model.action_dim}; set model.action_dim or convert the store")
        steps = np.concatenate([np.arange(*store.episode_bounds(int(e))) for e in domain.train_episodes])
        actions[domain.name] = np.asarray(store.array("action")[:])[steps]
        if model.use_state and "state" in store.keys and store.array("state").shape[1:] != (model.state_dim,):
            raise ConfigError(f"store {domain.store} has {store.array('state').shape[1:]} states but "
                              f"model.state_dim={model.state_dim}; set model.state_dim to the store's state size")
        states[domain.name] = (np.asarray(store.array("state")[:])[steps] if "state" in store.keys
                               and store.array("state").shape[1:] == (model.state_dim,)
                               else np.zeros((len(steps), model.state_dim), np.float32))
        gripper = tuple(store.gripper_dims) if gripper is None else gripper
    default = next((d.name for d in domains if d.cotrain), domains[0].name)
    chosen = target or default
    if chosen not in actions:
        raise ConfigError(f"data.target_domain={chosen!r} is not a training domain; choose one of {list(actions)}")
    return Normalization.fit(actions, states, gripper or (), model.clip_range, chosen)


def image_transform(model: ModelConfig) -> v2.Transform:
    """Resize to the model's input size (training, validation and inference alike)."""
    return v2.Resize(tuple(model.image_size), antialias=True)


def to_model_images(frames: np.ndarray, transform: v2.Transform) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, h, w) uint8 at the model's size."""
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    return transform(tensor)


class MixtureDataset(Dataset):
    """All domains' training (or validation) windows, as model-ready tensors.

    Indexed by a flat index into the concatenation of the domains (the order the weighted sampler
    uses), or by `(flat index, augmentation seed)` pairs from `SeededStream`. Training items carry
    their augmentation parameters ("augment", drawn from the seed); the trainer applies them to the
    whole batch on its device (`remix.policy.augment.apply_augmentation`).
    """

    def __init__(self, domains: Sequence[Domain], model: ModelConfig, normalization: Normalization,
                 split: str = "train", augment: AugmentConfig | None = None, goal_relabel: float = 0.0,
                 cache_mb: float = 0.0) -> None:
        self.model = model
        self.normalization = normalization
        self.names = [d.name for d in domains]
        self.image_keys = tuple(f"images/{c}" for c in model.cameras)
        self.windows: list[WindowSampler] = []
        self.cached: list[dict[str, np.ndarray] | None] = []  # a domain's frames, when they fit in memory
        budget = cache_mb * 2**20
        for domain in domains:
            store = EpisodeStore.open(domain.store, mode="r")
            missing = [k for k in self.image_keys if k not in store.keys]
            if missing:
                raise ConfigError(f"store {domain.store} has no {missing} (it has {list(store.keys)}); "
                                  "set model.cameras to cameras every store has")
            if model.use_state and "state" not in store.keys:
                raise ConfigError(f"store {domain.store} has no proprio state; set model.use_state=false")
            mask = np.zeros(store.num_episodes, dtype=bool)
            mask[domain.train_episodes if split == "train" else domain.val_episodes] = True
            self.windows.append(WindowSampler(store, n_obs=model.n_obs, horizon=model.horizon,
                                              obs_keys=("state",) if model.use_state else (), episode_mask=mask))
            size = sum(store.array(k).nbytes for k in self.image_keys)
            self.cached.append({k: np.asarray(store.array(k)[:]) for k in self.image_keys} if size <= budget else None)
            budget -= size if size <= budget else 0
        self.sizes = [len(w) for w in self.windows]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.transform = image_transform(model)
        self.augment = augment if split == "train" and augment is not None and augment.enabled else None
        self.goal_relabel = float(goal_relabel) if split == "train" else 0.0
        self._stores: dict[int, EpisodeStore] = {}
        height, width = model.image_size
        self.aspect = width / height

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_stores"] = {}  # DataLoader workers open their own store handles
        return state

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        domain = int(np.searchsorted(self.offsets, index, side="right") - 1)
        window = self.windows[domain][int(index - self.offsets[domain])]
        obs_steps, goal_step = self._frame_steps(domain, window, seed)
        images, goals = self._images(domain, obs_steps, goal_step)
        name = self.names[domain]
        if self.augment is None:
            params = identity_params()
        else:
            generator = torch.Generator()
            generator.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,))))
            params = draw_params(self.augment, self.aspect, generator)
        state = (self.normalization.normalize_state(window["obs"]["state"], name) if self.model.use_state
                 else np.zeros((self.model.n_obs, self.model.state_dim), np.float32))
        action = self.normalization.normalize_actions(window["action"], name)
        return {
            "images": images,
            "goal": goals,
            "state": torch.from_numpy(state),
            "action": torch.from_numpy(action),
            "valid": torch.from_numpy(window["action_valid"]),
            "domain": torch.tensor(domain),
            "augment": params,
        }

    def _frame_steps(self, domain: int, window: dict[str, Any], seed: int | None) -> tuple[np.ndarray, int]:
        """Store rows of the window's observation history and of its goal frame.

        The goal is the episode's last frame, or with probability `goal_relabel` (training items) a
        uniformly drawn later frame of the same episode (hindsight relabeling, as BridgeData V2 and
        GCBC train): the last frame alone ties each goal to one episode, later frames teach what
        moving towards a goal looks like.
        """
        ends = self.windows[domain].episode_ends
        episode = int(window["episode"])
        start = int(ends[episode - 1]) if episode > 0 else 0
        last = int(ends[episode]) - 1
        step = start + int(window["step"])
        obs_steps = np.clip(np.arange(step - self.model.n_obs + 1, step + 1), start, last)
        goal = last
        if self.goal_relabel > 0 and seed is not None:
            rng = np.random.default_rng([seed, 0x60A1])
            if rng.random() < self.goal_relabel:
                goal = int(rng.integers(min(step + 1, last), last + 1))
        return obs_steps, goal

    def _frames(self, domain: int, key: str, steps: np.ndarray) -> np.ndarray:
        cached = self.cached[domain]
        if cached is not None:
            return cached[key][steps]
        store = self._stores.get(domain)
        if store is None:
            store = self._stores[domain] = EpisodeStore.open(self.windows[domain].path, check_values=False)
        lo, hi = int(steps.min()), int(steps.max()) + 1
        return np.asarray(store.array(key)[lo:hi])[steps - lo]

    def _images(self, domain: int, obs_steps: np.ndarray, goal_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        per_camera, goals = [], []
        for key in self.image_keys:
            frames = np.concatenate([self._frames(domain, key, obs_steps), self._frames(domain, key, np.array([goal_step]))])
            out = to_model_images(frames, self.transform)
            per_camera.append(out[:-1])
            goals.append(out[-1])
        return torch.stack(per_camera), torch.stack(goals)


class SeededStream(Sampler[tuple[int, int]]):
    """Endless `(flat index, augmentation seed)` stream over epochs of a `WeightedDomainSampler`.

    Starting at `start` skips that many samples without loading them, so a resumed run sees exactly
    the samples an uninterrupted run would have seen next.
    """

    def __init__(self, sampler: WeightedDomainSampler, seed: int, start: int = 0) -> None:
        self.sampler = sampler
        self.seed = seed
        self.start = start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        per_epoch = len(self.sampler)
        epoch, offset = divmod(self.start, per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            indices = list(iter(self.sampler))
            for position in range(offset, per_epoch):
                seed = int(np.random.SeedSequence([self.seed, self.sampler.rank, epoch, position]).generate_state(1)[0])
                yield indices[position], seed
            epoch, offset = epoch + 1, 0

