"""remix-data: inspect, validate or generate episode stores."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from remix.common.cli import hydra_main
from remix.common.config import register
from remix.common.errors import ConfigError
from remix.data.stats import format_summary, store_summary
from remix.data.store import EpisodeStore, validate_store
from remix.data.synthetic import DEFAULT_DOMAINS, make_synthetic_dataset

COMMANDS = ("info", "validate", "synthetic", "import", "export")


@dataclass(frozen=True)
class SyntheticSection:
    image_size: int = 0  # 0 = state only; e.g. 32 adds a small rendered camera image per step
    episode_length: int = 25
    seed: int = 0


def _not_given(*keys: str) -> Any:
    return field(default_factory=lambda: dict.fromkeys(keys))


@dataclass(frozen=True)
class DataCommand:
    """remix-data's settings. Import/export options are None = not given: the preset's value or the
    importer's own default (remix/data/importers/options.py ImportOptions) applies; docs/data.md explains them."""

    command: str = "info"  # info | validate | synthetic | import | export
    path: str | None = None  # the store (info, validate), OUT (synthetic), the source (import, export)
    json: bool = False  # info: print as JSON
    synthetic: SyntheticSection = field(default_factory=SyntheticSection)
    out: str | None = None  # import/export: the store (or LeRobot folder) to write; an existing store is resumed
    preset: str | None = None  # import: configs/import/<name>.yaml (bridge, robomimic_mh, droid, ...) or a YAML path
    format: str | None = None  # import: auto | rlds | lerobot | robomimic | replay_buffer; export: lerobot
    split: str | None = None  # source split (train, val, ...); None = all
    fps: float | None = None  # frame rate, required when the source has none (RLDS, replay buffers)
    robot: str | None = None
    cameras: Any = None  # {store camera: source key}, e.g. {cam0: steps/observation/image_0}
    image_size: Any = None  # [H, W] for every camera (or one number); None = the source's size
    resize: str | None = None  # stretch | crop | pad
    action: Any = None  # source key or list of keys concatenated
    state: Any = None  # source key or list of keys concatenated
    action_names: Any = None
    gripper_dims: Any = None
    action_kind: str | None = None  # delta | absolute (how stride combines skipped actions)
    stride: int | None = None  # keep every k-th step; delta actions are summed over the skipped steps
    language: str | None = None  # source key of the instruction
    success: str | None = None  # source key of a success flag / reward
    domain: Any = _not_given("from", "key", "regex", "map", "value", "unmapped")  # per-episode domain source
    fields: Any = None  # more per-episode fields, {name: {from: ..., key: ..., regex: ...}}
    filters: Any = _not_given("success_only", "require_cameras", "min_length")
    max_episodes: int | None = None
    workers: int | None = None  # decoding processes (one writer)
    overwrite: bool | None = None  # replace an existing store / export folder instead of resuming
    shard_frames: int | None = None  # >0: frames per zarr shard file for image arrays


register("data_schema", DataCommand)


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
