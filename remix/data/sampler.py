"""Training windows from an episode store: an observation history, a future action chunk and a goal.

Each sample is anchored at one step t of one episode: observations at t-n+1..t, actions at t..t+h-1,
and the goal taken from the episode's last frame (hindsight goal relabeling). Windows that cross an
episode edge are padded by repeating the edge frame, and `action_valid` marks the padded actions.

The sampler keeps only the store path and an int64 index per sample, so it pickles cheaply into
DataLoader workers, each of which opens the store itself and reads lazily. Low-dimensional arrays are
read a chunk at a time through a small LRU cache; images are read frame by frame.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from remix.common.errors import StoreError
from remix.data.store import EpisodeStore


class _ChunkCache:
    """Read rows of a low-dim zarr array through a bounded cache of whole chunks."""

    def __init__(self, array: Any, num_steps: int, max_chunks: int = 32) -> None:
        self._array = array
        self._chunk = array.chunks[0]
        self._num_steps = num_steps
        self._max_chunks = max_chunks
        self._chunks: OrderedDict[int, np.ndarray] = OrderedDict()

    def _get_chunk(self, index: int) -> np.ndarray:
        if index in self._chunks:
            self._chunks.move_to_end(index)
            return self._chunks[index]
        start = index * self._chunk
        data = self._array[start : min(start + self._chunk, self._num_steps)]
        self._chunks[index] = data
        if len(self._chunks) > self._max_chunks:
            self._chunks.popitem(last=False)
        return data

    def rows(self, steps: np.ndarray) -> np.ndarray:
        chunk_ids = steps // self._chunk
        out = None
        for chunk_id in np.unique(chunk_ids):
            data = self._get_chunk(int(chunk_id))
            picked = data[steps[chunk_ids == chunk_id] - chunk_id * self._chunk]
            if out is None:
                out = np.empty((len(steps), *data.shape[1:]), dtype=data.dtype)
            out[chunk_ids == chunk_id] = picked
        assert out is not None
        return out


def split_episodes(num_episodes: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation episode masks; at least one episode on each side when possible."""
    if not 0.0 <= val_fraction < 1.0:
        raise StoreError(f"validation fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    num_val = int(round(num_episodes * val_fraction))
    if val_fraction > 0 and num_episodes >= 2:
        num_val = min(max(num_val, 1), num_episodes - 1)
    val_mask = np.zeros(num_episodes, dtype=bool)
    val_mask[rng.permutation(num_episodes)[:num_val]] = True
    return ~val_mask, val_mask


class WindowSampler:
    """Map-style dataset of (observation history, action chunk, goal) windows over selected episodes."""

    def __init__(
        self,
        store: EpisodeStore | str | Path,
        n_obs: int = 2,
        horizon: int = 4,
        obs_keys: Sequence[str] = ("state",),
        goal_keys: Sequence[str] = (),
        episode_mask: np.ndarray | None = None,
        action_key: str = "action",
    ) -> None:
        if n_obs < 1 or horizon < 1:
            raise StoreError(f"need n_obs >= 1 and horizon >= 1, got n_obs={n_obs}, horizon={horizon}")
        opened = store if isinstance(store, EpisodeStore) else EpisodeStore.open(store)
        self.path = opened.path
        self.n_obs = n_obs
        self.horizon = horizon
        self.obs_keys = tuple(obs_keys)
        self.goal_keys = tuple(goal_keys)
        self.action_key = action_key
        missing = [k for k in (*self.obs_keys, *self.goal_keys, action_key) if k not in opened.keys]
        if missing:
            raise StoreError(f"{opened.path} has no data keys {missing}; it has {list(opened.keys)}")
        self.episode_ends = opened.episode_ends
        mask = np.ones(opened.num_episodes, dtype=bool) if episode_mask is None else np.asarray(episode_mask, bool)
        if mask.shape != (opened.num_episodes,):
            raise StoreError(f"episode mask has shape {mask.shape}, expected ({opened.num_episodes},) for {opened.path}")
        starts = np.concatenate([[0], self.episode_ends[:-1]])
        selected = np.flatnonzero(mask)
        self.indices = (
            np.concatenate([np.arange(starts[e], self.episode_ends[e]) for e in selected]).astype(np.int64)
            if len(selected)
            else np.zeros(0, dtype=np.int64)
        )
        self._store: EpisodeStore | None = opened
        self._caches: dict[str, _ChunkCache] = {}

    @property
    def episode_of_sample(self) -> np.ndarray:
        return np.searchsorted(self.episode_ends, self.indices, side="right")

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_store"] = None
        state["_caches"] = {}
        return state

    def _read(self, key: str, steps: np.ndarray) -> np.ndarray:
        if self._store is None:
            self._store = EpisodeStore.open(self.path, check_values=False)
        if key.startswith("images/"):
            lo, hi = int(steps.min()), int(steps.max()) + 1
            return self._store.array(key)[lo:hi][steps - lo]
        if key not in self._caches:
            self._caches[key] = _ChunkCache(self._store.array(key), int(self.episode_ends[-1]))
        return self._caches[key].rows(steps)

    def __getitem__(self, index: int) -> dict[str, Any]:
        step = int(self.indices[index])
        episode = int(np.searchsorted(self.episode_ends, step, side="right"))
        start = int(self.episode_ends[episode - 1]) if episode > 0 else 0
        last = int(self.episode_ends[episode]) - 1
        obs_steps = np.clip(np.arange(step - self.n_obs + 1, step + 1), start, last)
        action_steps = np.arange(step, step + self.horizon)
        valid = action_steps <= last
        action_steps = np.minimum(action_steps, last)
        return {
            "obs": {key: self._read(key, obs_steps) for key in self.obs_keys},
            "action": self._read(self.action_key, action_steps),
            "action_valid": valid,
            "goal": {key: self._read(key, np.array([last]))[0] for key in self.goal_keys},
            "episode": episode,
            "step": step - start,
        }
