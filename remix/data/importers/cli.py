"""`remix-data import` and `remix-data export`: the config nodes of configs/data.yaml turned into calls.

remix/data/cli.py only dispatches here; every import/export option is a key of configs/data.yaml whose
value null means "not given" (the preset or the ImportOptions default applies).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from remix.common.errors import ConfigError
from remix.data.importers.options import ImportOptions, build_options

# configs/data.yaml keys that are not import options
_NOT_OPTIONS = {"command", "path", "json", "synthetic", "out", "preset"}


def _given(node: Any) -> Any:
    """Config values with every null dropped (nested too); None when nothing is left."""
    if isinstance(node, dict):
        kept = {k: _given(v) for k, v in node.items()}
        kept = {k: v for k, v in kept.items() if v is not None}
        return kept or None
    return node


def options_from_config(cfg: DictConfig) -> ImportOptions:
    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)
    given = {k: _given(v) for k, v in values.items() if k not in _NOT_OPTIONS}
    return build_options({k: v for k, v in given.items() if v is not None}, preset=cfg.preset)


def _out(cfg: DictConfig) -> Path:
    if not cfg.out:
        raise ConfigError(f"remix-data {cfg.command} needs out=DIR (where to write)")
    return Path(str(cfg.out))


def import_command(cfg: DictConfig) -> int:
    """remix-data import SRC out=DIR [preset=NAME] [format=...] [key=value ...]"""
    from remix.data.importers.run import import_dataset

    result = import_dataset(str(cfg.path), _out(cfg), options_from_config(cfg))
    print(result.summary())
    return 0


def export_command(cfg: DictConfig) -> int:
    """remix-data export SRC format=lerobot out=DIR"""
    from remix.data.export.lerobot import export_lerobot

    if cfg.format not in (None, "lerobot"):
        raise ConfigError(f"remix-data export writes format=lerobot only; got format={cfg.format}")
    report = export_lerobot(str(cfg.path), _out(cfg), overwrite=bool(cfg.overwrite))
    print(report)
    return 0
