"""Import options: one typed dataclass with every default, YAML presets on top, CLI values last.

`remix-data import SRC out=DIR preset=bridge fps=5 cameras={cam0: steps/observation/image_0}`:
the preset (configs/import/<name>.yaml, or a path to a YAML file) overrides the defaults below, and every
value given on the command line overrides the preset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from remix.common.errors import ConfigError
from remix.data.importers.common import RESIZE_MODES

PRESET_DIR = Path(str(resources.files("remix.configs"))) / "import"  # the repo's configs/import
FORMATS = ("auto", "rlds", "lerobot", "robomimic", "replay_buffer")
FIELD_SOURCES = ("field", "file_path", "mask", "column", "task", "source", "split", "constant")


@dataclass
class FieldRule:
    """How to derive one per-episode field (the domain, the scene, the operator, ...) from a source episode."""

    from_: str = "source"          # field | file_path | mask | column | task | source | split | constant
    key: str | None = None         # source key for field/file_path/column (file_path defaults to episode_metadata/file_path)
    regex: str | None = None       # keep group 1 (or the whole match) of the first match; no match -> ""
    map: str | dict | None = None  # YAML file (or dict) mapping raw values to final names
    value: str | None = None       # for from_=constant
    unmapped: str = "keep"         # a value missing from `map`: keep | skip (drop the episode) | error


@dataclass
class Filters:
    success_only: bool = False     # drop episodes the source marks unsuccessful (error if it has no success signal)
    require_cameras: bool = False  # drop episodes where a mapped camera is missing or blank (all frames one colour)
    min_length: int = 1            # drop shorter episodes


@dataclass
class ImportOptions:
    format: str = "auto"                           # auto | rlds | lerobot | robomimic | replay_buffer
    split: str | None = None                       # source split (RLDS/LeRobot); null = all, each tagged in `split`
    fps: float | None = None                       # required when the source has none (RLDS, replay buffers)
    robot: str = "unknown"
    cameras: dict[str, str] = field(default_factory=dict)  # store camera -> source key
    image_size: list[int] | None = None            # [H, W] for every camera; null = the source's size
    resize: str = "stretch"                        # stretch | crop (centre-crop to aspect) | pad (letterbox)
    action: list[str] = field(default_factory=list)  # source keys concatenated into the action
    state: list[str] = field(default_factory=list)   # source keys concatenated into the state; [] = none
    action_names: list[str] | None = None          # default: dx..gripper for 7 dims, else a0..aN
    gripper_dims: list[int] | None = None          # default: [6] for 7 dims, else []
    action_kind: str = "delta"                     # delta | absolute: how `stride` combines skipped actions
    stride: int = 1                                # keep every k-th step (store fps = fps/k); delta actions summed over the k
    language: str | None = None                    # source key of the instruction (per step or per episode)
    success: str | None = None                     # source key of a success flag/reward; default per format
    domain: FieldRule = field(default_factory=FieldRule)
    fields: dict[str, FieldRule] = field(default_factory=dict)  # extra per-episode fields, e.g. scene, operator
    filters: Filters = field(default_factory=Filters)
    max_episodes: int | None = None                # import at most the first N source episodes
    workers: int = 1                               # decoding processes feeding the one writer
    overwrite: bool = False                        # replace an existing store instead of resuming it
    shard_frames: int = 0                          # >0: zarr v3 shards of this many frames for image arrays


def _rule(value: Any, name: str) -> FieldRule:
    if isinstance(value, FieldRule):
        return value
    if isinstance(value, str):
        value = {"from": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a mapping like {{from: field, key: ...}}; got {value!r}")
    value = {("from_" if k == "from" else k): v for k, v in value.items()}
    unknown = set(value) - {f.name for f in dataclasses.fields(FieldRule)}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)} in {name}; use from, key, regex, map, value, unmapped")
    rule = FieldRule(**value)
    if rule.from_ not in FIELD_SOURCES:
        raise ConfigError(f"{name}.from={rule.from_!r} is not one of {', '.join(FIELD_SOURCES)}")
    if rule.unmapped not in ("keep", "skip", "error"):
        raise ConfigError(f"{name}.unmapped={rule.unmapped!r}; use keep, skip or error")
    return rule


def _keys(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def load_preset(name: str) -> dict[str, Any]:
    """A preset's values: configs/import/<name>.yaml or a YAML file path."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise ConfigError(f"no import preset {name!r}; use one of {', '.join(known)} or a path to a YAML file")
    data = yaml.safe_load(path.read_text()) or {}
    for key in ("map",):  # relative map files are relative to the preset
        for rule in [data.get("domain"), *(data.get("fields") or {}).values()]:
            if isinstance(rule, dict) and isinstance(rule.get(key), str) and not Path(rule[key]).is_absolute():
                rule[key] = str(path.parent / rule[key])
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("cameras",):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def build_options(values: dict[str, Any] | None = None, preset: str | None = None) -> ImportOptions:
    """Defaults < preset < `values` (None values are ignored, so unset CLI keys keep the preset's)."""
    merged = load_preset(preset) if preset else {}
    merged.pop("description", None)
    merged = _merge(merged, {k: v for k, v in (values or {}).items() if v is not None})
    known = {f.name for f in dataclasses.fields(ImportOptions)}
    unknown = set(merged) - known
    if unknown:
        raise ConfigError(f"unknown import options {sorted(unknown)}; see remix-data --help")
    merged["action"] = _keys(merged.get("action"))
    merged["state"] = _keys(merged.get("state"))
    merged["domain"] = _rule(merged.get("domain", {}), "domain")
    merged["fields"] = {name: _rule(rule, f"fields.{name}") for name, rule in (merged.get("fields") or {}).items()}
    filters = merged.get("filters") or {}
    merged["filters"] = filters if isinstance(filters, Filters) else Filters(**filters)
    merged["cameras"] = {str(k): str(v) for k, v in (merged.get("cameras") or {}).items()}
    options = ImportOptions(**merged)
    _check(options)
    return options


def _check(options: ImportOptions) -> None:
    if options.format not in FORMATS:
        raise ConfigError(f"format={options.format!r} is not one of {', '.join(FORMATS)}")
    if options.resize not in RESIZE_MODES:
        raise ConfigError(f"resize={options.resize!r}; use one of {', '.join(RESIZE_MODES)}")
    if options.action_kind not in ("delta", "absolute"):
        raise ConfigError(f"action_kind={options.action_kind!r}; use delta or absolute")
    if options.stride < 1 or options.workers < 1:
        raise ConfigError("stride and workers must be at least 1")
    if options.image_size is not None:
        size = options.image_size
        if isinstance(size, int):
            options.image_size = [size, size]
        elif len(size) != 2 or min(size) < 1:
            raise ConfigError(f"image_size must be [H, W] (or one number for squares); got {size!r}")
        options.image_size = [int(v) for v in options.image_size]
    if options.fps is not None and options.fps <= 0:
        raise ConfigError(f"fps must be positive; got {options.fps}")
