"""Prior data cut into selectable units and clusters, and the windows the proxy policy trains on.

A unit is the smallest piece of prior data that can be kept: a whole episode, or a segment of
`segment_steps` consecutive steps of one. Clusters group units: each unit on its own, or k-means on a
state-action summary of every unit (DataMIL clusters prior data to cut the noise of its estimates).
Windows come from the shared `WindowSampler` through the Re-Mix core's `EncodedWindows` (per-domain
Gaussian action normalization, bins), so the proxy sees exactly what `remix-weights` would; the target
demos form their own normalization domain and are split into training and held-out episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.cluster.vq import kmeans2

from remix.common.errors import ConfigError, RemixError
from remix.core.actions import ActionBinner, ActionNormalizer
from remix.core.dataset import (
    Batch,
    EncodedWindows,
    WindowSpec,
    check_store,
    fit_window_statistics,
    window_arrays,
    window_sampler,
)
from remix.data.domains import DomainSource, discover_domains, store_stem
from remix.data.sampler import WindowSampler, split_episodes
from remix.data.store import EpisodeStore
from remix.select.config import SelectSettings

MODEL_KEYS_PREFIX = ("bins", "valid", "state", "goal/", "images/")


@dataclass(frozen=True)
class Unit:
    """Steps [start, stop) of one episode of one prior store."""

    domain: str
    store: Path
    episode: int
    start: int
    stop: int

    @property
    def steps(self) -> int:
        return self.stop - self.start


@dataclass
class SelectionData:
    """Everything the estimators and baselines work on (all windows held in memory)."""

    domains: list[DomainSource]
    units: list[Unit]
    cluster_of_unit: np.ndarray  # (U,) cluster id of every unit
    unit_of_window: np.ndarray  # (W,) unit id of every prior window
    prior: Batch  # prior windows (W, ...)
    target_train: Batch
    target_heldout: Batch
    features: np.ndarray  # (W, F) retrieval features of the prior windows
    target_features: np.ndarray  # (Wt, F) the same for the target's training windows
    unit_embedding: np.ndarray  # (U, E) state-action summary per unit (k-means input)
    action_dim: int
    state_dim: int
    state_mean: torch.Tensor
    state_std: torch.Tensor
    target_names: tuple[str, ...]
    target_heldout_episodes: dict[str, list[int]]

    @property
    def num_clusters(self) -> int:
        return int(self.cluster_of_unit.max()) + 1 if len(self.cluster_of_unit) else 0

    @property
    def cluster_of_window(self) -> np.ndarray:
        return self.cluster_of_unit[self.unit_of_window]

    def cluster_steps(self) -> np.ndarray:
        """Prior steps per cluster."""
        steps = np.array([u.steps for u in self.units], dtype=np.int64)
        return np.bincount(self.cluster_of_unit, weights=steps, minlength=self.num_clusters).astype(np.int64)


def make_units(domains: Sequence[DomainSource], unit: str, segment_steps: int) -> list[Unit]:
    units = []
    for d in domains:
        lengths = EpisodeStore.open(d.path).episode_lengths
        for e in d.episodes:
            length = int(lengths[e])
            cuts = [0, length] if unit == "episode" else [*range(0, length, segment_steps), length]
            if unit == "segment" and len(cuts) > 2 and cuts[-1] - cuts[-2] < segment_steps // 2:
                cuts.pop(-2)  # a short tail joins the segment before it
            units += [Unit(d.name, d.path, int(e), a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    return units


def _window_steps(sampler: WindowSampler) -> tuple[np.ndarray, np.ndarray]:
    """(episode, step within episode) of every window of a sampler."""
    episodes = sampler.episode_of_sample
    starts = np.concatenate([[0], sampler.episode_ends[:-1]])[episodes]
    return episodes, sampler.indices - starts


def _split_target(settings: SelectSettings) -> list[tuple[str, EpisodeStore, np.ndarray, np.ndarray]]:
    """(name, store, training episodes, held-out episodes) of every target store."""
    parts = []
    for k, raw in enumerate(settings.target):
        store = EpisodeStore.open(Path(raw))
        if store.num_episodes < 2:
            raise RemixError(f"target {store.path} has {store.num_episodes} episodes; the target needs at least 2 "
                             "(some are held out to measure the target loss)")
        train, held = split_episodes(store.num_episodes, settings.heldout, settings.seed + 7919 * k)
        parts.append((store_stem(store.path), store, np.flatnonzero(train), np.flatnonzero(held)))
    return parts


def window_features(windows: Batch, binner: ActionBinner, state_mean: torch.Tensor, state_std: torch.Tensor,
                    visual_camera: str | None) -> np.ndarray:
    """Retrieval features of every window: standardized state, goal-minus-state and normalized action
    (behaviour retrieval's state-action similarity), or an 8x8 thumbnail of the camera frame."""
    if visual_camera:
        frames = windows[f"images/{visual_camera}"][:, -1].permute(0, 3, 1, 2).float() / 255.0
        return torch.nn.functional.adaptive_avg_pool2d(frames, 8).flatten(1).numpy().astype(np.float64)
    actions = binner.decode(windows["bins"].numpy()).reshape(len(windows["bins"]), -1)
    parts = [actions]
    if "state" in windows:
        state = ((windows["state"][:, -1] - state_mean) / state_std).numpy()
        delta = ((windows["goal/state"] - windows["state"][:, -1]) / state_std).numpy()
        parts += [state, delta]
    return np.concatenate(parts, axis=1).astype(np.float64)


def unit_embedding(features: np.ndarray, unit_of_window: np.ndarray, num_units: int, action_dims: int) -> np.ndarray:
    """Per unit: mean and spread of its windows' features plus the mean step-to-step action change
    (what separates a smooth demonstration from random actions), standardized over units."""
    counts = np.bincount(unit_of_window, minlength=num_units).clip(min=1)[:, None]
    mean = np.zeros((num_units, features.shape[1]))
    np.add.at(mean, unit_of_window, features)
    mean /= counts
    spread = np.zeros_like(mean)
    np.add.at(spread, unit_of_window, (features - mean[unit_of_window]) ** 2)
    spread = np.sqrt(spread / counts)
    change = np.zeros((num_units, 1))
    same = unit_of_window[1:] == unit_of_window[:-1]
    jumps = np.abs(np.diff(features[:, :action_dims], axis=0)).mean(1)
    np.add.at(change[:, 0], unit_of_window[1:][same], jumps[same])
    change /= counts
    embedding = np.concatenate([mean, spread, change], axis=1)
    return (embedding - embedding.mean(0)) / np.where(embedding.std(0) > 1e-9, embedding.std(0), 1.0)


def cluster_units(embedding: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster id per unit: itself (k = 0) or k-means; ids are renumbered 0..K-1 with no empty cluster."""
    if k <= 0 or k >= len(embedding):
        return np.arange(len(embedding))
    _, labels = kmeans2(embedding, k, minit="++", seed=seed)
    return np.unique(labels, return_inverse=True)[1]


def _encode(samplers: list[WindowSampler], names: list[str], normalizer: ActionNormalizer, binner: ActionBinner,
            spec: WindowSpec) -> Batch:
    windows = EncodedWindows(samplers, names, normalizer, binner, spec).materialize()
    return {k: v for k, v in windows.items() if k.startswith(MODEL_KEYS_PREFIX)}


def load_selection_data(settings: SelectSettings) -> SelectionData:
    """Open the prior and target stores, cut units, encode windows, build features and clusters."""
    domains = discover_domains(settings.data.paths, settings.data.domain_key)
    targets = _split_target(settings)
    clash = sorted({t[0] for t in targets} & {d.name for d in domains})
    if clash:
        raise ConfigError(f"target stores {clash} are named like prior domains; rename the target store")
    units = make_units(domains, settings.cluster.unit, settings.cluster.segment_steps)
    spec = WindowSpec(settings.model.n_obs, settings.model.horizon, settings.model.use_state, tuple(settings.model.cameras))
    actions: dict[str, np.ndarray] = {}
    states: list[np.ndarray] = []
    prior_samplers, unit_ids, gripper = [], [], (6,)
    index = {(u.domain, u.episode, u.start): i for i, u in enumerate(units)}
    starts_of: dict[tuple[str, int], list[int]] = {}
    for u in units:
        starts_of.setdefault((u.domain, u.episode), []).append(u.start)

    def add(name: str, store: EpisodeStore, sampler: WindowSampler) -> None:
        actions[name], sampler_states = window_arrays(store, sampler, spec.use_state)
        if sampler_states is not None:
            states.append(sampler_states)

    for d in domains:
        store = EpisodeStore.open(d.path)
        check_store(store, spec)
        gripper = store.gripper_dims
        prior_samplers.append(window_sampler(store, d.episodes, spec))
        add(d.name, store, prior_samplers[-1])
        for e, t in zip(*_window_steps(prior_samplers[-1])):
            seg_starts = np.asarray(starts_of[(d.name, int(e))])
            start = int(seg_starts[np.searchsorted(seg_starts, t, side="right") - 1])
            unit_ids.append(index[(d.name, int(e), start)])
    train_samplers, held_samplers = [], []
    for name, store, train, held in targets:
        check_store(store, spec)
        train_samplers.append(window_sampler(store, train, spec))
        held_samplers.append(window_sampler(store, held, spec))
        add(name, store, train_samplers[-1])
    # the same preprocessing remix-weights fits (remix.core.dataset), on the prior and target training windows
    stats = fit_window_statistics(actions, states, gripper)
    normalizer, state_mean, state_std = stats.normalizer, stats.state_mean, stats.state_std
    binner = ActionBinner("gaussian", settings.proxy.n_bins)
    target_names = [t[0] for t in targets]
    prior = _encode(prior_samplers, [d.name for d in domains], normalizer, binner, spec)
    target_train = _encode(train_samplers, target_names, normalizer, binner, spec)
    target_heldout = _encode(held_samplers, target_names, normalizer, binner, spec)
    camera = settings.model.cameras[0] if settings.retrieval == "visual" else None
    features = window_features(prior, binner, state_mean, state_std, camera)
    target_features = window_features(target_train, binner, state_mean, state_std, camera)
    unit_of_window = np.asarray(unit_ids, dtype=np.int64)
    sa = features if camera is None else window_features(prior, binner, state_mean, state_std, None)
    embedding = unit_embedding(sa, unit_of_window, len(units), settings.model.horizon * normalizer.action_dim)
    return SelectionData(
        domains=domains,
        units=units,
        cluster_of_unit=cluster_units(embedding, settings.cluster.kmeans, settings.seed),
        unit_of_window=unit_of_window,
        prior=prior,
        target_train=target_train,
        target_heldout=target_heldout,
        features=features,
        target_features=target_features,
        unit_embedding=embedding,
        action_dim=normalizer.action_dim,
        state_dim=stats.state_dim,
        state_mean=state_mean,
        state_std=state_std,
        target_names=tuple(target_names),
        target_heldout_episodes={t[0]: t[3].tolist() for t in targets},
    )
