"""Sample training examples from several domains by given domain weights.

Re-Mix produces a weight per domain; every downstream trainer (diffusion policy, the DRO proxy,
the reference model) draws its examples through `WeightedDomainSampler` so "train on weights w"
means one thing everywhere:

* each draw first picks a domain with probability ``w_d`` (i.i.d., so small domains are not
  starved by epoch boundaries), then the next example of that domain's own shuffled pass, so
  within a domain every example is seen equally often (no duplicate before the pass is used up);
* the stream is a pure function of ``(seed, epoch, rank)``, so runs are reproducible and ranks of a
  ``torchrun`` job draw disjoint-by-seed streams;
* it is a ``torch.utils.data.Sampler[int]`` yielding *flat* indices into the concatenation of the
  domains in order (``torch.utils.data.ConcatDataset(domain_datasets)``). Samplers run in the main
  process, so it works unchanged with any number of DataLoader workers.

``domain_of(index)`` / ``pairs()`` give the ``(domain, index-within-domain)`` view.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from torch.utils.data import Sampler

from remix.common.errors import ConfigError

__all__ = ["WeightedDomainSampler", "normalize_weights", "size_weights"]


def normalize_weights(weights: Sequence[float] | np.ndarray, num_domains: int | None = None) -> np.ndarray:
    """Validate and normalize domain weights to sum to one (float64).

    Raises `ConfigError` for a wrong count, negative, NaN/inf or all-zero weights.
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if num_domains is not None and w.size != num_domains:
        raise ConfigError(
            f"got {w.size} domain weights for {num_domains} domains; give one weight per domain"
        )
    if w.size == 0:
        raise ConfigError("no domain weights given; give one weight per domain")
    if not np.all(np.isfinite(w)):
        raise ConfigError(f"domain weights must be finite, got {w.tolist()}; fix the weights file or config")
    if np.any(w < 0):
        raise ConfigError(f"domain weights must be >= 0, got {w.tolist()}; fix the weights file or config")
    if w.max() <= 0:
        raise ConfigError("all domain weights are zero; give at least one domain a positive weight")
    w = w / w.max()  # huge weights (1e308 + 1e308 = inf) would otherwise normalize every domain to 0
    return w / w.sum()


def size_weights(domain_sizes: Sequence[int]) -> np.ndarray:
    """The size-proportional mixture (every example equally likely): ``size_d / sum(size)``."""
    sizes = np.asarray(domain_sizes, dtype=np.float64)
    return normalize_weights(sizes, len(sizes))


class WeightedDomainSampler(Sampler[int]):
    """Draw flat example indices: domain ``d`` with probability ``weights[d]``, then an example of it.

    Args:
        domain_sizes: number of examples in each domain (domain order = ConcatDataset order).
        weights: one non-negative weight per domain (normalized here), or a mapping name -> weight
            together with ``names``.
        num_samples: length of one "epoch" of the sampler.
        seed: base seed; the stream depends only on (seed, epoch, rank).
        names: optional domain names (needed when ``weights`` is a mapping).
        rank, world_size: for distributed training each rank draws its own stream of
            ``num_samples // world_size`` indices.
    """

    def __init__(
        self,
        domain_sizes: Sequence[int],
        weights: Sequence[float] | np.ndarray | Mapping[str, float],
        num_samples: int,
        seed: int = 0,
        names: Sequence[str] | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        sizes = np.asarray([int(s) for s in domain_sizes], dtype=np.int64)
        if sizes.size == 0:
            raise ConfigError("no domains to sample from; give at least one domain")
        if np.any(sizes < 0):
            raise ConfigError(f"domain sizes must be >= 0, got {sizes.tolist()}")
        self.names = tuple(names) if names is not None else tuple(f"domain{d}" for d in range(sizes.size))
        if len(self.names) != sizes.size:
            raise ConfigError(f"got {len(self.names)} domain names for {sizes.size} domains")
        if isinstance(weights, Mapping):
            missing = [n for n in self.names if n not in weights]
            extra = [n for n in weights if n not in self.names]
            if missing or extra:
                raise ConfigError(
                    f"domain weights do not match the domains (missing {missing}, unknown {extra}); "
                    "use a weights file made for these domains"
                )
            weights = [float(weights[n]) for n in self.names]
        self.weights = normalize_weights(weights, sizes.size)
        empty = [self.names[d] for d in range(sizes.size) if sizes[d] == 0 and self.weights[d] > 0]
        if empty:
            raise ConfigError(
                f"domains {empty} have no examples but a positive weight; drop them or set weight 0"
            )
        if num_samples <= 0:
            raise ConfigError(f"num_samples must be positive, got {num_samples}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"bad distributed setup rank={rank} world_size={world_size}")
        self.domain_sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.num_samples = int(num_samples) // world_size if world_size > 1 else int(num_samples)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Change the stream for the next pass (like DistributedSampler.set_epoch)."""
        self.epoch = int(epoch)

    def _generator(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, self.rank, 0x5E5A])

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """One epoch of draws as arrays ``(domain, index within domain)``, each of length ``len(self)``."""
        rng = self._generator()
        domains = rng.choice(self.weights.size, size=self.num_samples, p=self.weights)
        local = np.empty(self.num_samples, dtype=np.int64)
        for d in np.flatnonzero(self.weights > 0):
            where = np.flatnonzero(domains == d)
            if where.size == 0:
                continue
            size = int(self.domain_sizes[d])
            passes = -(-where.size // size)
            order = np.argsort(rng.random((passes, size)), axis=1).reshape(-1)  # `passes` shuffled passes
            local[where] = order[: where.size]
        return domains.astype(np.int64), local

    def __iter__(self) -> Iterator[int]:
        domains, local = self.draw()
        return iter((self.offsets[domains] + local).tolist())

    def pairs(self) -> Iterator[tuple[int, int]]:
        """The same stream as ``iter(self)`` viewed as ``(domain, index within domain)``."""
        domains, local = self.draw()
        return iter(zip(domains.tolist(), local.tolist()))

    def domain_of(self, index: int | np.ndarray) -> int | np.ndarray:
        """Domain of a flat index (vectorized for arrays)."""
        d = np.searchsorted(self.offsets, index, side="right") - 1
        return int(d) if np.ndim(d) == 0 else d

    def locate(self, index: int) -> tuple[int, int]:
        """Flat index -> ``(domain, index within domain)``."""
        d = int(self.domain_of(index))
        return d, int(index - self.offsets[d])
