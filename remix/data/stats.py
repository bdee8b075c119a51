"""Streaming statistics over an episode store, read chunk by chunk so memory stays flat."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from remix.data.store import EpisodeStore

STATS_BLOCK = 1 << 16


@dataclass(frozen=True)
class ArrayStats:
    """Per-dimension statistics of a (T, D) array."""

    count: int
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray


def array_stats(store: EpisodeStore, key: str, steps: np.ndarray | None = None) -> ArrayStats:
    """Mean/std/min/max per dimension of data/<key>, over all committed steps or the given step indices.

    Uses a two-pass-free, numerically stable merge (Chan et al.) of per-block moments.
    """
    array = store.array(key)
    dims = array.shape[1]
    count, mean, m2 = 0, np.zeros(dims), np.zeros(dims)
    low, high = np.full(dims, np.inf), np.full(dims, -np.inf)
    total = store.num_steps
    for start in range(0, total, STATS_BLOCK):
        stop = min(start + STATS_BLOCK, total)
        if steps is None:
            block = np.asarray(array[start:stop], dtype=np.float64)
        else:
            wanted = steps[(steps >= start) & (steps < stop)]
            if not len(wanted):
                continue
            block = np.asarray(array[start:stop], dtype=np.float64)[wanted - start]
        n = len(block)
        block_mean = block.mean(axis=0)
        block_m2 = ((block - block_mean) ** 2).sum(axis=0)
        delta = block_mean - mean
        mean = mean + delta * n / (count + n)
        m2 = m2 + block_m2 + delta**2 * count * n / (count + n)
        count += n
        low, high = np.minimum(low, block.min(axis=0)), np.maximum(high, block.max(axis=0))
    std = np.sqrt(m2 / count) if count else np.zeros(dims)
    return ArrayStats(count, mean, std, low, high)


def field_summary(store: EpisodeStore, name: str, max_values: int = 10) -> dict[str, Any]:
    """Distinct values of a per-episode field with episode counts (most common first)."""
    values = store.field(name)
    counts = Counter(v.item() if hasattr(v, "item") else v for v in values)
    return {"distinct": len(counts), "values": dict(counts.most_common(max_values))}


def store_summary(store: EpisodeStore) -> dict[str, Any]:
    """Everything `remix-data info` prints, as data."""
    arrays = {key: {"shape": list(store.array(key).shape[1:]), "dtype": str(store.array(key).dtype)} for key in store.keys}
    lengths = store.episode_lengths
    summary: dict[str, Any] = {
        "path": str(store.path),
        "robot": store.robot,
        "fps": store.fps,
        "episodes": store.num_episodes,
        "steps": store.num_steps,
        "episode_length": {
            "min": int(lengths.min()) if len(lengths) else 0,
            "mean": float(lengths.mean()) if len(lengths) else 0.0,
            "max": int(lengths.max()) if len(lengths) else 0,
        },
        "keys": arrays,
        "fields": {name: field_summary(store, name) for name in store.fields},
        "cameras": store.cameras,
        "gripper_dims": list(store.gripper_dims),
    }
    if store.num_steps:
        stats = array_stats(store, "action")
        summary["action"] = {
            name: {"mean": float(stats.mean[i]), "std": float(stats.std[i]), "min": float(stats.min[i]), "max": float(stats.max[i])}
            for i, name in enumerate(store.action_names)
        }
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"store     {summary['path']}",
        f"robot     {summary['robot']} @ {summary['fps']:g} fps",
        f"episodes  {summary['episodes']}",
        f"steps     {summary['steps']}  (episode length min {summary['episode_length']['min']}, "
        f"mean {summary['episode_length']['mean']:.1f}, max {summary['episode_length']['max']})",
        "keys:",
    ]
    lines += [f"  {key:<24} {info['dtype']:<8} per step {tuple(info['shape'])}" for key, info in summary["keys"].items()]
    lines.append("per-episode fields:")
    for name, info in summary["fields"].items():
        shown = ", ".join(f"{value!s}: {count}" for value, count in info["values"].items())
        more = "" if info["distinct"] <= len(info["values"]) else f", ... ({info['distinct']} distinct)"
        lines.append(f"  {name:<12} {shown}{more}")
    if "action" in summary:
        lines.append(f"action statistics (gripper dims {summary['gripper_dims']}):")
        lines.append(f"  {'dim':<10} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}")
        for name, s in summary["action"].items():
            lines.append(f"  {name:<10} {s['mean']:>10.4f} {s['std']:>10.4f} {s['min']:>10.4f} {s['max']:>10.4f}")
    return "\n".join(lines)
