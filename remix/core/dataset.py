"""Domains and their training windows, preprocessed for the discrete policy.

Domains come from `remix.data.domains.discover_domains` (the one discovery every command shares): a
whole episode store, or the episodes of a store sharing one value of a per-episode field. Every
domain's episodes are split into train/validation episodes (`split_domains`, also shared), its actions are normalized with its own statistics and binned,
and the windows come from the shared `WindowSampler` (observation history, action chunk, goal).

`EncodedWindows` is a map-style dataset over the windows of all domains (flat index = concatenation
in domain order, as `WeightedDomainSampler` expects). `materialize()` stacks it into tensors once for
small data (the fast path for CPU runs); otherwise batches are read lazily through a DataLoader.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from remix.common.errors import ConfigError, RemixError
from remix.core.actions import ActionBinner, ActionNormalizer
from remix.data.domains import DomainSource, split_domains
from remix.data.mixture import WeightedDomainSampler
from remix.data.sampler import WindowSampler
from remix.data.store import EpisodeStore

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class WindowSpec:
    """What one training window holds."""

    n_obs: int = 2
    horizon: int = 1
    use_state: bool = True
    cameras: tuple[str, ...] = ()
    continuous: bool = False  # also hold the normalized actions themselves (regression-loss ablation)


class EncodedWindows(Dataset):
    """Windows of all domains with binned, per-domain-normalized actions; item = dict of tensors."""

    def __init__(
        self,
        samplers: Sequence[WindowSampler],
        domain_names: Sequence[str],
        normalizer: ActionNormalizer,
        binner: ActionBinner,
        spec: WindowSpec,
    ) -> None:
        self.samplers = list(samplers)
        self.domain_names = tuple(domain_names)
        self.normalizer = normalizer
        self.binner = binner
        self.spec = spec
        self.domain_sizes = np.array([len(s) for s in self.samplers], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.domain_sizes)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> Batch:
        d = int(np.searchsorted(self.offsets, index, side="right") - 1)
        window = self.samplers[d][int(index - self.offsets[d])]
        actions = self.normalizer.normalize(window["action"], self.domain_names[d])
        item: Batch = {
            "bins": torch.from_numpy(self.binner.encode(actions)),
            "valid": torch.from_numpy(np.asarray(window["action_valid"], dtype=bool)),
            "domain": torch.tensor(d),
            "index": torch.tensor(int(index)),
        }
        if self.spec.continuous:
            item["actions"] = torch.from_numpy(np.asarray(actions, dtype=np.float32))
        if self.spec.use_state:
            item["state"] = torch.from_numpy(np.asarray(window["obs"]["state"], dtype=np.float32))
            item["goal/state"] = torch.from_numpy(np.asarray(window["goal"]["state"], dtype=np.float32))
        for cam in self.spec.cameras:
            item[f"images/{cam}"] = torch.from_numpy(np.ascontiguousarray(window["obs"][f"images/{cam}"]))
            item[f"goal/{cam}"] = torch.from_numpy(np.ascontiguousarray(window["goal"][f"images/{cam}"]))
        return item

    def materialize(self, batch_size: int = 512) -> Batch:
        """All windows stacked into tensors (N, ...)."""
        parts = list(DataLoader(self, batch_size=batch_size, shuffle=False, num_workers=0))
        if not parts:
            raise RemixError("no training windows; the domains are empty")
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


@dataclass
class PreparedData:
    """Train and validation windows of every domain plus the preprocessing fitted on them."""

    domains: list[DomainSource]
    normalizer: ActionNormalizer
    binner: ActionBinner
    spec: WindowSpec
    train: EncodedWindows
    val: EncodedWindows
    state_mean: torch.Tensor
    state_std: torch.Tensor
    action_dim: int
    state_dim: int
    marginal_nll: dict[str, float] = field(default_factory=dict)  # per domain; see `marginal_nll`

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.domains]


def marginal_nll(train_bins: np.ndarray, val_bins: np.ndarray, n_bins: int) -> float:
    """Held-out NLL of a domain's own action marginal: per dimension, the training bin frequencies
    (add-1/2 smoothed) scored on the validation actions, summed over dimensions like `sequence_nll`.

    This is what a policy that ignores the observation achieves on the domain, so a trained policy
    that never gets meaningfully below it has learned nothing that generalizes (early_stop.py).
    Bins are (N, A) int arrays; NaN when there are no validation actions.
    """
    if len(val_bins) == 0:
        return float("nan")
    total = 0.0
    for dim in range(train_bins.shape[1]):
        counts = np.bincount(train_bins[:, dim], minlength=n_bins).astype(np.float64) + 0.5
        total += float(-np.log(counts / counts.sum())[val_bins[:, dim]].mean())
    return total


def check_store(store: EpisodeStore, spec: WindowSpec) -> None:
    """The store holds what the windows read (state when `use_state`, every camera); else a one-line error."""
    if spec.use_state and "state" not in store.keys:
        raise ConfigError(f"{store.path} has no state; set model.use_state=false and give model.cameras")
    missing = [c for c in spec.cameras if f"images/{c}" not in store.keys]
    if missing:
        raise ConfigError(f"{store.path} has no cameras {missing}; it has {list(store.cameras)} (set model.cameras)")


def window_sampler(store: EpisodeStore, episodes: Sequence[int] | np.ndarray, spec: WindowSpec) -> WindowSampler:
    """The windows of `episodes` of one store: observation history (state, cameras), action chunk and goal."""
    mask = np.zeros(store.num_episodes, dtype=bool)
    mask[np.asarray(episodes, dtype=np.int64)] = True
    keys = (("state",) if spec.use_state else ()) + tuple(f"images/{c}" for c in spec.cameras)
    return WindowSampler(store, n_obs=spec.n_obs, horizon=spec.horizon, obs_keys=keys, goal_keys=keys, episode_mask=mask)


def window_arrays(store: EpisodeStore, sampler: WindowSampler, use_state: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The actions (and states) at every window start of `sampler`, float64: what the statistics are fitted on."""
    actions = np.asarray(store.array("action")[:], dtype=np.float64)[sampler.indices]
    states = np.asarray(store.array("state")[:], dtype=np.float64)[sampler.indices] if use_state else None
    return actions, states


@dataclass(frozen=True)
class WindowStatistics:
    """Per-domain action normalization and the (pooled) state statistics fitted on training windows."""

    normalizer: ActionNormalizer
    state_mean: torch.Tensor
    state_std: torch.Tensor  # constant dimensions get 1 (as the model uses them)
    state_dim: int


def fit_window_statistics(
    actions: dict[str, np.ndarray],
    states: Sequence[np.ndarray],
    gripper_dims: Sequence[int],
    normalization: str = "gaussian",
    normalize_gripper: bool = False,
) -> WindowStatistics:
    """Fit the action normalizer per domain and the state mean/std over all given states (none: no state).

    The one place remix-weights (`prepare_data`) and remix-select fit their preprocessing, so the proxy
    remix-select trains sees windows exactly as remix-weights would."""
    normalizer = ActionNormalizer.fit(actions, normalization, tuple(gripper_dims), normalize_gripper)  # type: ignore[arg-type]
    if not states:
        return WindowStatistics(normalizer, torch.zeros(1), torch.ones(1), 0)
    all_states = np.concatenate(list(states))
    if not np.all(np.isfinite(all_states)):
        raise RemixError("state arrays contain NaN/inf; clean the stores")
    std = torch.tensor(all_states.std(0), dtype=torch.float32)
    return WindowStatistics(normalizer, torch.tensor(all_states.mean(0), dtype=torch.float32),
                            torch.where(std < 1e-6, torch.ones_like(std), std), all_states.shape[1])


def prepare_data(
    domains: Sequence[DomainSource],
    spec: WindowSpec,
    normalization: str = "gaussian",
    normalize_gripper: bool = False,
    bins: str = "gaussian",
    n_bins: int = 100,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> PreparedData:
    """Split episodes, fit per-domain action statistics on the train episodes, and wrap the windows."""
    binner = ActionBinner(bins, n_bins)  # type: ignore[arg-type]
    train_samplers, val_samplers, actions, val_actions, states = [], [], {}, {}, []
    gripper_dims: tuple[int, ...] = ()
    for domain, (train_episodes, val_episodes) in zip(domains, split_domains(domains, val_fraction, seed)):
        store = EpisodeStore.open(domain.path)
        gripper_dims = store.gripper_dims
        check_store(store, spec)
        train_samplers.append(window_sampler(store, train_episodes, spec))
        val_samplers.append(window_sampler(store, val_episodes, spec))
        actions[domain.name], train_states = window_arrays(store, train_samplers[-1], spec.use_state)
        val_actions[domain.name], _ = window_arrays(store, val_samplers[-1], False)
        if train_states is not None:
            states.append(train_states)
    stats = fit_window_statistics(actions, states, gripper_dims, normalization, normalize_gripper)
    normalizer = stats.normalizer
    names = [d.name for d in domains]
    marginals = {}
    for name in names:
        train_actions = normalizer.normalize(actions[name], name)
        held_out = normalizer.normalize(val_actions[name], name)
        if spec.continuous:  # the L2 loss of always predicting the training mean
            error = held_out - train_actions.mean(0)
            marginals[name] = float(0.5 * np.square(error).sum(-1).mean()) if len(held_out) else float("nan")
        else:
            marginals[name] = marginal_nll(binner.encode(train_actions), binner.encode(held_out), binner.n_bins)
    return PreparedData(
        domains=list(domains),
        normalizer=normalizer,
        binner=binner,
        spec=spec,
        train=EncodedWindows(train_samplers, names, normalizer, binner, spec),
        val=EncodedWindows(val_samplers, names, normalizer, binner, spec),
        state_mean=stats.state_mean,
        state_std=stats.state_std,
        action_dim=normalizer.action_dim,
        state_dim=stats.state_dim,
        marginal_nll=marginals,
    )


class BatchStream:
    """Endless batches drawn by a `WeightedDomainSampler` from in-memory tensors or lazily from a dataset.

    Under DDP each rank draws its own seeded stream of `batch_size` (per-rank) samples.
    """

    def __init__(
        self,
        windows: EncodedWindows,
        weights: Sequence[float],
        batch_size: int,
        seed: int,
        tensors: Batch | None = None,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        batches_per_epoch: int = 1000,
    ) -> None:
        self.windows = windows
        self.tensors = tensors
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.sampler = WeightedDomainSampler(
            windows.domain_sizes,
            weights,
            num_samples=batch_size * batches_per_epoch * world_size,
            seed=seed,
            names=windows.domain_names,
            rank=rank,
            world_size=world_size,
        )

    @property
    def batches_per_epoch(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        return self.iterate()

    def iterate(self, start: int = 0) -> Iterator[Batch]:
        """The stream from batch number `start` on (0-based): the same batches a fresh stream yields after
        `start` batches, without reading the skipped ones (what resuming from a checkpoint needs)."""
        epoch, skip = divmod(start, self.batches_per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)[skip * self.batch_size :]
            if self.tensors is not None:
                flat = torch.as_tensor(order, dtype=torch.long)
                for chunk in flat.split(self.batch_size):
                    if len(chunk) == self.batch_size:
                        yield {key: value[chunk] for key, value in self.tensors.items()}
            else:
                loader = DataLoader(
                    self.windows,
                    batch_size=self.batch_size,
                    sampler=order,  # type: ignore[arg-type]
                    num_workers=self.num_workers,
                    drop_last=True,
                    persistent_workers=False,
                )
                yield from loader
            epoch, skip = epoch + 1, 0


def eval_indices(windows: EncodedWindows, per_domain: int, seed: int) -> np.ndarray:
    """A fixed, seeded subset of up to `per_domain` flat indices of every domain (for loss curves)."""
    rng = np.random.default_rng(seed)
    picks = []
    for d, size in enumerate(windows.domain_sizes):
        count = min(int(size), per_domain)
        picks.append(windows.offsets[d] + np.sort(rng.choice(int(size), size=count, replace=False)))
    return np.concatenate(picks).astype(np.int64)
