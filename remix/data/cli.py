"""remix-data: inspect, validate or generate episode stores."""

from __future__ import annotations

import json

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


@hydra_main("data", positional=("command", "path"))
def main(cfg: DictConfig) -> int:
    """remix-data: inspect, validate or generate episode stores.

    Usage:
      remix-data info PATH [json=true]   episodes, steps, keys, per-episode fields, action statistics
      remix-data validate PATH           list every problem of a store; exit 1 if there is any
      remix-data synthetic OUT           write the built-in synthetic dataset, one store per domain
                                         (synthetic.image_size=32 adds a small camera image)
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
        problems = validate_store(path)
        for problem in problems:
            print(f"error: {problem}")
        if not problems:
            print(f"ok: {path}")
        return 1 if problems else 0
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
