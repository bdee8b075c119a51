"""remix-data: inspect, validate or generate episode stores."""

from __future__ import annotations

import json
import os
from pathlib import Path

from omegaconf import DictConfig

from remix.common.cli import hydra_main
from remix.common.errors import ConfigError
from remix.data.stats import format_summary, store_summary
from remix.data.store import EpisodeStore, validate_store
from remix.data.synthetic import DEFAULT_DOMAINS, make_synthetic_dataset

COMMANDS = ("info", "validate", "synthetic", "import", "export")


def _require_path(cfg: DictConfig) -> str:
    if not cfg.path:
        raise ConfigError(f"remix-data {cfg.command} needs a path: remix-data {cfg.command} PATH")
    return str(cfg.path)


def _check_synthetic(cfg: DictConfig, out: str) -> None:
    """Bounded sizes, a writable OUT, and no silent replacement of stores already there."""
    limits = {"image_size": (0, 512), "episode_length": (1, 10_000), "seed": (0, 2**32 - 1)}
    for key, (low, high) in limits.items():
        value = cfg.synthetic[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"synthetic.{key}={value!r} must be an integer in {low}..{high}")
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} is a file; remix-data synthetic OUT writes one store per domain into the folder OUT")
    existing = [str(root / f"{d.name}.zarr") for d in DEFAULT_DOMAINS if (root / f"{d.name}.zarr").exists()]
    if existing and not cfg.overwrite:
        raise ConfigError(f"{existing[0]} already exists (+{len(existing) - 1} more); pass overwrite=true to replace "
                          "them or choose another OUT")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create {root} ({error.strerror}); choose a writable OUT") from None
    if not os.access(root, os.W_OK):
        raise ConfigError(f"{root} is not writable; choose a writable OUT")


@hydra_main("data", positional=("command", "path"))
def main(cfg: DictConfig) -> int:
    """remix-data: inspect, validate or generate episode stores.

    Usage:
      remix-data info PATH [json=true]   episodes, steps, keys, per-episode fields, action statistics
      remix-data validate PATH           read every chunk and list every problem of a store; exit 1 if any
      remix-data synthetic OUT           write the built-in synthetic dataset, one store per domain
                                         (synthetic.image_size=32 adds a small camera image;
                                         existing stores are kept unless overwrite=true)
      remix-data import SRC out=DIR [preset=NAME] [format=auto|rlds|lerobot|robomimic|replay_buffer] [fps=..]
                                         import RLDS/Open X, LeRobot, robomimic or replay-buffer data (docs/data.md)
      remix-data export SRC format=lerobot out=DIR   write a store as a LeRobot v3.0 dataset
    """
    if cfg.command not in COMMANDS:
        raise ConfigError(f"unknown command {cfg.command!r}; use one of {', '.join(COMMANDS)}")
    path = _require_path(cfg)
    if cfg.command in ("import", "export"):
        from remix.data.importers.cli import export_command, import_command

        return import_command(cfg) if cfg.command == "import" else export_command(cfg)
    if cfg.command == "info":
        summary = store_summary(EpisodeStore.open(path))
        print(json.dumps(summary, indent=2, default=str) if cfg.json else format_summary(summary))
        return 0
    if cfg.command == "validate":
        problems = validate_store(path, deep=True)  # reads every chunk: missing files, checksums, decompression
        for problem in problems:
            print(f"error: {problem}")
        if not problems:
            print(f"ok: {path}")
        return 1 if problems else 0
    _check_synthetic(cfg, path)
    paths = make_synthetic_dataset(
        path,
        DEFAULT_DOMAINS,
        seed=cfg.synthetic.seed,
        image_size=cfg.synthetic.image_size,
        episode_length=cfg.synthetic.episode_length,
    )
    for store_path in paths:
        store = EpisodeStore.open(store_path)
        print(f"wrote {store_path}: {store.num_episodes} episodes, {store.num_steps} steps")
    return 0
