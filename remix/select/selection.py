"""Baseline scores, choosing clusters under the budget, and writing the selection like `remix-subset`.

Methods: `datamil` keeps the best-scoring clusters but never one scoring at or below `min_score`, nor
(regression) one whose score is within `min_z` standard errors of 0, so junk and clusters whose benefit
is indistinguishable from noise stay out even when the budget is not filled; `retrieval` keeps the clusters whose windows
are most similar to the target's (behaviour retrieval: nearest target window by cosine similarity of
standardized state-action or thumbnail features); `random` keeps a seeded random set; `all` keeps
everything. Every method fills the budget with the prefix of its ordering whose step count is closest
to `budget x prior steps` (remix-subset's rule for episodes).

Output (`out/`): one store per source store that keeps something (same name; kept segments become
episodes, with `selected_from_episode` and `selected_from_step` fields), written under a temporary name
and renamed when complete, and `subset.json` (the remix-subset manifest: `stores`, `domains`, `weights`
= kept-step shares, so `remix-train data.subset=out data.cotrain=[target.zarr]` samples the selection
uniformly per step and co-trains with the target).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from remix.common.atomic import write_json_atomic
from remix.common.errors import ConfigError
from remix.data.store import EpisodeStore
from remix.select.data import SelectionData, Unit

SUBSET_FILE = "subset.json"


def retrieval_scores(data: SelectionData, chunk: int = 4096) -> np.ndarray:
    """Per cluster: mean over its windows of the best cosine similarity to a target training window."""
    mean, std = data.target_features.mean(0), data.target_features.std(0)
    std = np.where(std > 1e-9, std, 1.0)

    def unit_rows(x: np.ndarray) -> np.ndarray:
        z = (x - mean) / std
        return z / np.clip(np.linalg.norm(z, axis=1, keepdims=True), 1e-9, None)

    target = unit_rows(data.target_features)
    best = np.concatenate([(unit_rows(data.features[i : i + chunk]) @ target.T).max(1)
                           for i in range(0, len(data.features), chunk)])
    k = data.num_clusters
    counts = np.bincount(data.cluster_of_window, minlength=k).clip(min=1)
    return np.bincount(data.cluster_of_window, weights=best, minlength=k) / counts


def fill_budget(order: np.ndarray, steps: np.ndarray, budget_steps: float) -> np.ndarray:
    """Boolean mask of the clusters in the prefix of `order` whose step total is closest to the budget."""
    cumulative = np.concatenate([[0], np.cumsum(steps[order])])
    keep = np.zeros(len(steps), dtype=bool)
    keep[order[: int(np.argmin(np.abs(cumulative - budget_steps)))]] = True
    return keep


def choose(method: str, data: SelectionData, budget: float, seed: int, scores: np.ndarray | None = None,
           retrieval: np.ndarray | None = None, min_score: float | np.ndarray = 0.0) -> np.ndarray:
    """Mask over clusters kept by a method at `budget` (share of the prior steps); `datamil` keeps only
    clusters scoring above `min_score` (a number or one threshold per cluster)."""
    steps = data.cluster_steps()
    target = budget * steps.sum()
    if method == "all":
        return np.ones(len(steps), dtype=bool)
    if method == "random":
        return fill_budget(np.random.default_rng(seed).permutation(len(steps)), steps, target)
    if method == "retrieval":
        assert retrieval is not None
        return fill_budget(np.argsort(-retrieval, kind="stable"), steps, target)
    if method == "datamil":
        assert scores is not None
        order = np.argsort(-scores, kind="stable")
        floor = np.broadcast_to(np.asarray(min_score, dtype=np.float64), scores.shape)
        return fill_budget(order[scores[order] > floor[order]], steps, target)
    raise ConfigError(f"unknown method {method!r}")


def kept_units(data: SelectionData, clusters: np.ndarray) -> list[Unit]:
    return [u for u, c in zip(data.units, data.cluster_of_unit) if clusters[c]]


def merge_ranges(units: Sequence[Unit]) -> dict[Path, list[tuple[int, int, int, str]]]:
    """Per store: (episode, start, stop, domain) with adjacent kept segments of one episode joined."""
    by_store: dict[Path, list[tuple[int, int, int, str]]] = {}
    for u in sorted(units, key=lambda u: (str(u.store), u.episode, u.start)):
        ranges = by_store.setdefault(u.store, [])
        if ranges and ranges[-1][0] == u.episode and ranges[-1][2] == u.start:
            ranges[-1] = (u.episode, ranges[-1][1], u.stop, u.domain)
        else:
            ranges.append((u.episode, u.start, u.stop, u.domain))
    return by_store


def _copy_ranges(source: Path, ranges: Sequence[tuple[int, int, int, str]], out: Path) -> Path:
    src = EpisodeStore.open(source)
    final, tmp = out / source.name, out / f".partial-{source.name}"
    dst = EpisodeStore.create(tmp, fps=src.fps, robot=src.robot, action_names=src.action_names,
                              gripper_dims=src.gripper_dims, cameras=src.cameras, state_names=src.state_names,
                              overwrite=True)
    fields = {name: src.field(name) for name in src.fields}
    for episode, start, stop, _ in tqdm(ranges, desc=f"select {source.name}", leave=False):
        values: dict[str, Any] = {n: (f[episode].item() if hasattr(f[episode], "item") else f[episode])
                                  for n, f in fields.items()}
        values.update(selected_from_episode=int(episode), selected_from_step=int(start))
        arrays = {k: v[start:stop] for k, v in src.read_episode(episode).items()}
        dst.add_episode(arrays, **values)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def write_selection(data: SelectionData, clusters: np.ndarray, out: Path, info: Mapping[str, Any]) -> dict[str, Any]:
    """Write the kept clusters as stores plus subset.json; returns the manifest."""
    if any((out / Path(d.path).name).resolve() == Path(d.path).resolve() for d in data.domains):
        raise ConfigError(f"out={out} holds the source stores themselves; write the selection elsewhere")
    units = kept_units(data, clusters)
    stores: dict[str, str] = {}
    kept: dict[str, dict[str, Any]] = {d.name: {"size_steps": d.num_steps, "kept_steps": 0, "kept_episodes": [],
                                                 "segments": []} for d in data.domains}
    for source, ranges in merge_ranges(units).items():
        stores[str(source)] = str(_copy_ranges(source, ranges, out))
        for episode, start, stop, domain in ranges:
            entry = kept[domain]
            entry["kept_steps"] += stop - start
            entry["segments"].append([episode, start, stop])
            if episode not in entry["kept_episodes"]:
                entry["kept_episodes"].append(episode)
    domains = {name: entry for name, entry in kept.items() if entry["kept_steps"] > 0}
    total = sum(e["kept_steps"] for e in domains.values())
    manifest = {
        **info,
        "kept_steps": total,
        "prior_steps": int(sum(d.num_steps for d in data.domains)),
        "stores": stores,
        "domains": domains,
        "weights": {name: e["kept_steps"] / total for name, e in domains.items()},
    }
    write_json_atomic(out / SUBSET_FILE, manifest)
    return manifest


def domain_shares(data: SelectionData, clusters: np.ndarray) -> dict[str, float]:
    """Share of each prior domain in the kept steps (0 for all when nothing is kept)."""
    steps = {d.name: 0 for d in data.domains}
    for u in kept_units(data, clusters):
        steps[u.domain] += u.steps
    total = sum(steps.values())
    return {n: (s / total if total else 0.0) for n, s in steps.items()}
