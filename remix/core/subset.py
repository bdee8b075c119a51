"""`remix-subset`: keep a fraction of the data, whole episodes, shared out by the Re-Mix weights.

Water-filling (paper sec. 4.4): the target is `fraction x total steps`. Every domain first gets
min(target x w_d, size_d) steps; whatever is left over is handed to the domains that still have room,
in proportion to their weights, again capped at their size, until the target is met or every domain
with a positive weight is full. Each domain then keeps a seeded random set of whole episodes: the
shuffled prefix whose step count is closest to its budget. Training on the subset should still sample
domains by the exact Re-Mix weights (`subset.json` carries them for `WeightedDomainSampler`).

Output: one store per source store under `out/` (same name), written to a temporary name and renamed
when complete, plus `subset.json` with the per-domain budget, kept steps and kept episode indices.
"""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from remix.common.atomic import write_json_atomic
from remix.common.cli import prepare_out_dir
from remix.common.errors import ConfigError, RemixError
from remix.core.run import load_weights
from remix.data.domains import DomainSource, discover_domains
from remix.data.mixture import normalize_weights
from remix.data.store import EpisodeStore


def water_fill(sizes: Mapping[str, float], weights: Mapping[str, float], target: float) -> dict[str, float]:
    """Step budget per domain: weight-proportional shares of `target`, capped at each domain's size,
    with the overflow repeatedly re-shared among domains that still have room."""
    names = list(sizes)
    size = np.array([float(sizes[n]) for n in names])
    w = normalize_weights([weights[n] for n in names], len(names))
    if target < 0:
        raise ConfigError(f"subset target must be >= 0 steps, got {target}")
    budget = np.zeros(len(names))
    left = float(min(target, size[w > 0].sum()))
    for _ in range(len(names) + 1):
        room = (budget < size) & (w > 0)
        if left <= 1e-9 or not room.any():
            break
        share = np.where(room, w, 0.0)
        add = np.minimum(left * share / share.sum(), size - budget)
        budget += add
        left -= float(add.sum())
    return dict(zip(names, budget.tolist()))


def pick_episodes(lengths: np.ndarray, budget: float, seed: int) -> np.ndarray:
    """Indices (into `lengths`) of a seeded random set of whole episodes whose total is closest to `budget`."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    cumulative = np.concatenate([[0], np.cumsum(lengths[order])])
    k = int(np.argmin(np.abs(cumulative - budget)))
    return np.sort(order[:k])


@dataclass(frozen=True)
class DomainSubset:
    name: str
    weight: float
    size_steps: int
    budget_steps: float
    kept_steps: int
    kept_episodes: tuple[int, ...]  # episode indices in the source store
    total_episodes: int


def plan_subset(
    domains: Sequence[DomainSource], weights: Mapping[str, float], fraction: float, seed: int
) -> list[DomainSubset]:
    """Decide which episodes of each domain to keep (no writing)."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction}")
    missing = [d.name for d in domains if d.name not in weights]
    if missing:
        raise RemixError(
            f"the weights file has no weight for domains {missing}; use weights made for these datasets"
        )
    sizes = {d.name: d.num_steps for d in domains}
    target = fraction * sum(sizes.values())
    budgets = water_fill(sizes, {d.name: weights[d.name] for d in domains}, target)
    plan = []
    for d in domains:
        store = EpisodeStore.open(d.path)
        lengths = store.episode_lengths[list(d.episodes)]
        local = pick_episodes(lengths, budgets[d.name], seed + zlib.crc32(d.name.encode()))
        kept = tuple(int(d.episodes[i]) for i in local)
        plan.append(
            DomainSubset(
                d.name,
                float(weights[d.name]),
                d.num_steps,
                budgets[d.name],
                int(lengths[local].sum()),
                kept,
                len(d.episodes),
            )
        )
    return plan


def write_subset(plan: Sequence[DomainSubset], domains: Sequence[DomainSource], out: Path) -> dict[str, str]:
    """Copy the kept episodes into one store per source store under `out`; returns source -> subset path."""
    by_store: dict[Path, list[int]] = {}
    for part, d in zip(plan, domains):
        by_store.setdefault(d.path, []).extend(part.kept_episodes)
    written: dict[str, str] = {}
    for source, episodes in by_store.items():
        src = EpisodeStore.open(source)
        final = out / source.name
        tmp = out / f".partial-{source.name}"
        dst = EpisodeStore.create(
            tmp,
            fps=src.fps,
            robot=src.robot,
            action_names=src.action_names,
            gripper_dims=src.gripper_dims,
            cameras=src.cameras,
            state_names=src.state_names,
            overwrite=True,
        )
        fields = {name: src.field(name) for name in src.fields}
        for i in tqdm(sorted(episodes), desc=f"subset {source.name}", leave=False):
            values = {
                name: (v.item() if hasattr(v, "item") else v)
                for name, v in ((n, f[i]) for n, f in fields.items())
            }
            dst.add_episode(src.read_episode(i), **values)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        written[str(source)] = str(final)
    return written


def print_subset_table(plan: Sequence[DomainSubset], console: Console | None = None) -> None:
    table = Table(title="Re-Mix subset (steps)")
    for col in ("domain", "weight %", "size", "budget", "kept", "episodes"):
        table.add_column(col, justify="left" if col == "domain" else "right")
    for p in plan:
        table.add_row(
            p.name,
            f"{100 * p.weight:.2f}",
            str(p.size_steps),
            f"{p.budget_steps:.0f}",
            str(p.kept_steps),
            f"{len(p.kept_episodes)}/{p.total_episodes}",
        )
    (console or Console()).print(table)


def run_subset(
    weights: str | Path,
    fraction: float,
    out: str | Path | None,
    seed: int = 0,
    overwrite: bool = False,
    paths: Sequence[str] | None = None,
    console: Console | None = None,
) -> list[DomainSubset]:
    """Plan and write the subset described in the module docstring."""
    if not weights:
        raise ConfigError("weights= is missing; give a weights.json (or run directory) from remix-weights")
    if not out:
        raise ConfigError("out= is missing; give a directory for the subset stores")
    out = prepare_out_dir(out, "the subset stores", holds=("subset.json", "a subset"), overwrite=overwrite,
                          create=False)
    info = load_weights(weights)
    sources = info.get("sources") or []
    store_paths = list(paths) if paths else list(dict.fromkeys(s["path"] for s in sources))
    if not store_paths:
        raise RemixError("the weights file lists no source stores; pass paths=[...] with the datasets")
    domains = discover_domains(store_paths, info.get("domain_key"), min_domains=2)
    if any(
        Path(p).resolve() == out.resolve() or out.resolve() in Path(p).resolve().parents for p in store_paths
    ):
        raise ConfigError(f"out={out} contains the source stores; write the subset elsewhere")
    plan = plan_subset(domains, info["weights"], fraction, seed)
    if not sum(p.kept_steps for p in plan):
        raise ConfigError(f"fraction={fraction:g} keeps no episode (every episode is longer than the target); "
                          "raise fraction")
    prepare_out_dir(out, "the subset stores", holds=("subset.json", "a subset"), overwrite=overwrite)
    written = write_subset(plan, domains, out)
    total = sum(d.num_steps for d in domains)
    report: dict[str, Any] = {
        "fraction": fraction,
        "seed": seed,
        "target_steps": fraction * total,
        "kept_steps": sum(p.kept_steps for p in plan),
        "weights_file": str(weights),
        "weights": {p.name: p.weight for p in plan},
        "domain_key": info.get("domain_key"),
        "stores": written,
        "domains": {
            p.name: {
                "weight": p.weight,
                "size_steps": p.size_steps,
                "budget_steps": p.budget_steps,
                "kept_steps": p.kept_steps,
                "kept_episodes": list(p.kept_episodes),
                "total_episodes": p.total_episodes,
            }
            for p in plan
        },
    }
    write_json_atomic(out / "subset.json", report)
    print_subset_table(plan, console)
    (console or Console()).print(
        f"kept {report['kept_steps']} of {total} steps (target {report['target_steps']:.0f}); subset in {out}"
    )
    return plan
