"""PNG plots of a Re-Mix run (matplotlib, Agg backend): what people look at to trust the weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_alpha(log: Sequence[Mapping[str, float]], names: Sequence[str], path: Path) -> Path:
    """Instantaneous alpha (thin) and its running average (thick) per domain over DRO steps."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [row["step"] for row in log]
    for i, name in enumerate(names):
        colour = f"C{i % 10}"
        ax.plot(steps, [row[f"alpha/{name}"] for row in log], color=colour, alpha=0.35, linewidth=1)
        ax.plot(steps, [row[f"average/{name}"] for row in log], color=colour, linewidth=2, label=name)
    ax.set(
        xlabel="DRO step",
        ylabel="domain weight alpha",
        title="Group DRO domain weights (thick: time average)",
    )
    ax.legend(fontsize="small", ncol=2)
    return _save(fig, path)


def plot_excess(log: Sequence[Mapping[str, float]], names: Sequence[str], path: Path) -> Path:
    """Mean (unclipped) excess NLL of the proxy over the reference, per domain."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [row["step"] for row in log]
    for i, name in enumerate(names):
        ax.plot(steps, [row[f"excess/{name}"] for row in log], color=f"C{i % 10}", label=name)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set(xlabel="DRO step", ylabel="proxy NLL - reference NLL", title="Per-domain excess loss")
    ax.legend(fontsize="small", ncol=2)
    return _save(fig, path)


def plot_reference(
    steps: Sequence[int],
    train_nll: Mapping[str, Sequence[float]],
    val_nll: Mapping[str, Sequence[float]],
    chosen_step: int,
    path: Path,
) -> Path:
    """Reference per-domain train (dashed) and validation (solid) NLL, chosen checkpoint marked."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, name in enumerate(train_nll):
        colour = f"C{i % 10}"
        ax.plot(steps, train_nll[name], color=colour, linestyle="--", linewidth=1)
        ax.plot(steps, val_nll[name], color=colour, marker=".", label=name)
    ax.axvline(chosen_step, color="black", linestyle=":", label=f"chosen step {chosen_step}")
    ax.set(
        xlabel="reference step", ylabel="NLL", title="Reference model: train (dashed) vs validation (solid)"
    )
    ax.legend(fontsize="small", ncol=2)
    return _save(fig, path)


def plot_weights(weights: Mapping[str, float], size_weights: Mapping[str, float], path: Path) -> Path:
    """Re-Mix weights next to the size-proportional weights, one pair of bars per domain."""
    names = list(weights)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names) + 2), 4.5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [size_weights[n] for n in names], width=0.4, label="size", color="0.7")
    ax.bar([i + 0.2 for i in x], [weights[n] for n in names], width=0.4, label="Re-Mix", color="C0")
    ax.set_xticks(list(x), names, rotation=30, ha="right")
    ax.set(ylabel="domain weight", title="Re-Mix vs size-proportional domain weights")
    ax.legend()
    return _save(fig, path)
