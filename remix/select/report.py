"""What the scores look like: per-cluster CSV, the top/bottom table with domains, the domain share of
each method's selection, and plots (scores with a frame per cluster, shares, regression vs first-order).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from remix.data.store import EpisodeStore  # noqa: E402
from remix.select.data import SelectionData  # noqa: E402


def cluster_domains(data: SelectionData) -> list[dict[str, float]]:
    """Per cluster: share of its steps from each domain, largest first."""
    out: list[dict[str, float]] = [{} for _ in range(data.num_clusters)]
    for u, c in zip(data.units, data.cluster_of_unit):
        out[c][u.domain] = out[c].get(u.domain, 0) + u.steps
    return [{k: v / sum(m.values()) for k, v in sorted(m.items(), key=lambda kv: -kv[1])} for m in out]


def describe(mix: Mapping[str, float]) -> str:
    return " / ".join(f"{name} {100 * share:.0f}%" for name, share in list(mix.items())[:3])


def write_scores_csv(path: Path, data: SelectionData, columns: Mapping[str, np.ndarray],
                     selected: Mapping[str, np.ndarray]) -> None:
    mixes = cluster_domains(data)
    steps = data.cluster_steps()
    units = np.bincount(data.cluster_of_unit, minlength=data.num_clusters)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["cluster", "domains", "units", "steps", *columns, *(f"selected_{m}" for m in selected)])
        for c in range(data.num_clusters):
            writer.writerow([c, describe(mixes[c]), int(units[c]), int(steps[c]),
                             *(f"{v[c]:.6g}" for v in columns.values()), *(int(s[c]) for s in selected.values())])


def extremes(scores: np.ndarray, n: int) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    n = min(n, len(order) // 2) if len(order) > 1 else len(order)
    return [*order[:n].tolist(), *order[len(order) - n:].tolist()] if n else order.tolist()


def print_cluster_table(data: SelectionData, scores: np.ndarray, columns: Mapping[str, np.ndarray],
                        kept: np.ndarray, n: int, console: Console) -> None:
    mixes = cluster_domains(data)
    steps = data.cluster_steps()
    table = Table(title=f"top and bottom {n} clusters (score = predicted drop of the held-out target loss)")
    for col in ("rank", "cluster", "domains", "steps", *columns, "kept"):
        table.add_column(col, justify="left" if col == "domains" else "right")
    rank = np.empty(len(scores), dtype=int)
    rank[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    for c in extremes(scores, n):
        table.add_row(str(rank[c]), str(c), describe(mixes[c]), str(steps[c]),
                      *(f"{v[c]:+.4f}" for v in columns.values()), "yes" if kept[c] else "")
    console.print(table)


def print_share_table(rows: Mapping[str, Mapping[str, float]], kept_steps: Mapping[str, int], console: Console) -> None:
    names = list(next(iter(rows.values())))
    table = Table(title="share of each prior domain in the selection (%)")
    table.add_column("method")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("kept steps", justify="right")
    for method, shares in rows.items():
        table.add_row(method, *(f"{100 * shares.get(n, 0.0):.1f}" for n in names), str(kept_steps.get(method, "")))
    console.print(table)


def thumbnail(data: SelectionData, cluster: int, size: int = 48) -> np.ndarray:
    """A frame of the cluster's first unit (camera image when the store has one, else its EE path from above)."""
    unit = next(u for u, c in zip(data.units, data.cluster_of_unit) if c == cluster)
    store = EpisodeStore.open(unit.store)
    start = int(store.episode_bounds(unit.episode)[0])
    if store.cameras:
        camera = next(iter(store.cameras))
        frame = np.asarray(store.array(f"images/{camera}")[start + (unit.start + unit.stop) // 2])
        return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    if "state" in store.keys:
        xy = np.asarray(store.array("state")[start + unit.start : start + unit.stop])[:, :2]
        span = np.ptp(xy, axis=0).max() or 1.0
        pts = ((xy - xy.min(0)) / span * (size - 8) + 4).astype(np.int32)[:, ::-1]
        cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], False, (40, 40, 200), 2)
        cv2.circle(canvas, tuple(int(v) for v in pts[-1]), 3, (200, 40, 40), -1)
    return canvas


def plot_clusters(path: Path, data: SelectionData, scores: np.ndarray, kept: np.ndarray, n: int) -> None:
    picks = extremes(scores, n)
    mixes = cluster_domains(data)
    domains = [d.name for d in data.domains]
    colours = {name: plt.cm.tab10(i % 10) for i, name in enumerate(domains)}
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(picks) + 1.2))
    y = np.arange(len(picks))[::-1]
    ax.barh(y, scores[picks], color=[colours[next(iter(mixes[c]))] for c in picks],
            edgecolor=["black" if kept[c] else "none" for c in picks])
    ax.set_yticks(y, [f"#{c} {describe(mixes[c])}" for c in picks], fontsize=7)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("score: predicted drop of held-out target loss (>0 helps); black edge = kept")
    lo, hi = min(scores[picks].min(), 0.0), max(scores[picks].max(), 0.0)
    span = (hi - lo) or 1.0
    ax.set_xlim(lo - 0.14 * span, hi + 0.02 * span)  # room for the frames on the left
    for row, c in zip(y, picks):
        box = AnnotationBbox(OffsetImage(thumbnail(data, c), zoom=0.55), (lo - 0.07 * span, row), frameon=False)
        ax.add_artist(box)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[n]) for n in domains]
    ax.legend(handles, domains, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_shares(path: Path, rows: Mapping[str, Mapping[str, float]]) -> None:
    names = list(next(iter(rows.values())))
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.2))
    left = np.zeros(len(rows))
    for i, name in enumerate(names):
        values = np.array([rows[m].get(name, 0.0) for m in rows])
        ax.barh(list(rows), values, left=left, color=plt.cm.tab10(i % 10), label=name)
        left += values
    ax.set_xlabel("share of the kept steps")
    ax.legend(fontsize=7, ncol=min(len(names), 4), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_estimators(path: Path, data: SelectionData, regression: np.ndarray, first_order: np.ndarray,
                    rho: float) -> None:
    mixes = cluster_domains(data)
    domains = [d.name for d in data.domains]
    fig, ax = plt.subplots(figsize=(5, 4))
    for i, name in enumerate(domains):
        mine = [c for c in range(len(mixes)) if next(iter(mixes[c])) == name]
        ax.scatter(regression[mine], first_order[mine], s=12, color=plt.cm.tab10(i % 10), label=name)
    ax.axhline(0, color="grey", lw=0.6)
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlabel("regression score")
    ax.set_ylabel("first-order score")
    ax.set_title(f"cluster scores, Spearman rho = {rho:.2f}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
