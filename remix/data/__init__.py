"""The episode store, its window sampler and synthetic data."""

from remix.data.sampler import WindowSampler, split_episodes
from remix.data.store import EpisodeStore

__all__ = ["EpisodeStore", "WindowSampler", "split_episodes"]
