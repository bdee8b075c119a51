"""Domain discovery and the train/validation episode split, shared by every command that trains on domains.

A domain is a whole episode store (named by its stem), or the episodes of a store sharing one value of
a per-episode field (`domain_key`, e.g. `scene`; named by the value). remix-weights, remix-subset,
remix-select and remix-train all call `discover_domains`, so the same stores give the same domains,
the same names and the same errors everywhere; and `split_domains` is their one validation split (per
domain, so every domain with two or more episodes keeps at least one on each side).

Torch-free and free of training code, so anything may import it without pulling in the learning stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from remix.common.errors import ConfigError, RemixError
from remix.data.sampler import split_episodes
from remix.data.store import EpisodeStore


@dataclass(frozen=True)
class DomainSource:
    """The episodes of one store that make up one domain; `cotrain` marks a remix-train co-training store."""

    name: str
    path: Path
    episodes: tuple[int, ...]
    num_steps: int
    cotrain: bool = False


def store_stem(path: Path) -> str:
    """A store's domain name when it is not split by a field: its file name without `.zarr`."""
    return path.name.removesuffix(".zarr") or path.name


def discover_domains(
    paths: Sequence[str | Path],
    domain_key: str | None = None,
    *,
    cotrain: Sequence[str | Path] = (),
    min_domains: int = 1,
) -> list[DomainSource]:
    """Open the stores and split them into domains; every user error is a one-line `RemixError`.

    `paths` are split by `domain_key` when it is given; each `cotrain` store is one domain of its own
    (the robot being deployed is never split). `min_domains` is 2 for Re-Mix, which weighs domains
    against each other.
    """
    if not paths and not cotrain:
        raise ConfigError("no datasets given; set data.paths=[a.zarr,b.zarr]")
    domains: list[DomainSource] = []
    stems: dict[str, Path] = {}
    action_dims: dict[str, int] = {}
    for is_cotrain, group in ((False, paths), (True, cotrain)):
        for raw in group:
            store = EpisodeStore.open(Path(str(raw)).expanduser(), mode="r")
            stem = store_stem(store.path)
            if stem in stems:
                raise ConfigError(f"two stores are both named {stem!r} ({stems[stem]} and {store.path}); "
                                  "domain names come from store names, rename one")
            stems[stem] = store.path
            if store.action_names:
                action_dims[stem] = len(store.action_names)
            lengths = store.episode_lengths
            if domain_key and not is_cotrain:
                if domain_key not in store.fields:
                    raise ConfigError(f"{store.path} has no per-episode field {domain_key!r} for data.domain_key; "
                                      f"it has {list(store.fields)}")
                values = np.asarray(store.field(domain_key)).astype(str)
                for value in dict.fromkeys(values.tolist()):
                    episodes = np.flatnonzero(values == value)
                    domains.append(DomainSource(value, store.path, tuple(episodes.tolist()),
                                                int(lengths[episodes].sum()), is_cotrain))
            else:
                domains.append(DomainSource(stem, store.path, tuple(range(store.num_episodes)),
                                            int(store.num_steps), is_cotrain))
    if len(set(action_dims.values())) > 1:
        raise RemixError(f"action dims differ across stores {action_dims}; convert them to one action space first")
    names = [d.name for d in domains]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"domain names {duplicates} appear twice; rename the stores or pick another data.domain_key")
    empty = [d.name for d in domains if not d.episodes or d.num_steps == 0]
    if empty:
        raise RemixError(f"domains {empty} have no episodes; drop them from data.paths")
    if len(domains) < min_domains:
        raise RemixError(f"Re-Mix needs at least {min_domains} domains, found {names}; "
                         "add stores to data.paths or set data.domain_key")
    return domains


def split_domains(
    domains: Sequence[DomainSource], val_fraction: float, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Train and validation episode indices (into each domain's store) per domain.

    Each domain is split on its own (seed + its position), so a domain cut out of a store by
    `domain_key` gets validation episodes of its own and is never left without training episodes
    when it has two or more.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    splits = []
    for k, domain in enumerate(domains):
        episodes = np.asarray(domain.episodes, dtype=np.int64)
        train, val = split_episodes(len(episodes), val_fraction, seed + k)
        if not train.any():
            raise ConfigError(f"domain {domain.name!r} has no training episodes after the validation split "
                              f"(it has {len(episodes)}); add episodes or lower data.val_fraction")
        splits.append((episodes[train], episodes[val]))
    return splits
