"""Per-episode fields (domain, scene, operator, ...) derived from a source episode by a `FieldRule`.

The paper's three datasets need three rules: Bridge V2 scenes come from a path component of
`episode_metadata/file_path` (regex) grouped by a map; robomimic MH operators come from the `mask/*`
filter keys that list the demo; RT-X domains are the source datasets themselves.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from remix.data.importers.common import SourceEpisode, SourceError, as_text
from remix.data.importers.options import FieldRule

MASKS = "masks"        # SourceEpisode.meta key: the filter keys that list an episode (robomimic)
TASK = "task"          # SourceEpisode.meta key: the task string a reader found (LeRobot, robomimic)
DEFAULT_FILE_PATH = "episode_metadata/file_path"


class SkipEpisode(Exception):
    """The episode is left out on purpose (a filter or an unmapped value with unmapped=skip)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@lru_cache(maxsize=32)
def _load_map(path: str) -> dict[str, str]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise SourceError(f"{path}: cannot read the value map ({error}); fix the map file path") from None
    if not isinstance(data, dict):
        raise SourceError(f"{path}: a value map must be a YAML mapping raw -> name (or name -> [raw, ...])")
    flat: dict[str, str] = {}
    for name, raws in data.items():
        for raw in raws if isinstance(raws, list) else [raws]:
            # `name: [raw, ...]` groups raw values; `raw: name` renames one
            key, value = (str(raw), str(name)) if isinstance(raws, list) else (str(name), str(raws))
            flat[key] = value
    return flat


def _raw(rule: FieldRule, episode: SourceEpisode, task: str) -> str:
    source = rule.from_
    if source == "constant":
        return str(rule.value or "")
    if source == "source":
        return episode.ref.source
    if source == "split":
        return episode.ref.split
    if source == "task":
        return task
    if source == "mask":
        keys = [str(k) for k in episode.meta.get(MASKS, [])]
        if rule.regex:
            for key in keys:
                match = re.search(rule.regex, key)
                if match:
                    return match.group(1) if match.groups() else match.group(0)
            return ""
        return ",".join(keys)
    key = rule.key or (DEFAULT_FILE_PATH if source == "file_path" else None)
    if key is None:
        raise SourceError(f"{episode.where}: the {source} rule needs a key (e.g. domain.key=...)")
    if source == "column":
        if key not in episode.steps:
            raise SourceError(f"{episode.where}: no step column {key!r} for the field rule; it has {sorted(episode.steps)}")
        values = episode.steps[key]
        return as_text(values[0]) if len(values) else ""
    if key not in episode.meta:
        raise SourceError(f"{episode.where}: no per-episode value {key!r} for the field rule; it has {sorted(episode.meta)}")
    return as_text(episode.meta[key])


def field_value(rule: FieldRule, episode: SourceEpisode, task: str, name: str) -> str:
    """The field's value for `episode`; raises SkipEpisode for unmapped values when the rule says skip."""
    value = _raw(rule, episode, task)
    if rule.regex and rule.from_ != "mask":
        match = re.search(rule.regex, value)
        value = (match.group(1) if match.groups() else match.group(0)) if match else ""
    if rule.map is None:
        return value
    mapping = {str(k): str(v) for k, v in rule.map.items()} if isinstance(rule.map, dict) else _load_map(str(rule.map))
    if value in mapping:
        return mapping[value]
    if rule.unmapped == "skip":
        raise SkipEpisode(f"{name} {value!r} not in map")
    if rule.unmapped == "error":
        raise SourceError(f"{episode.where}: {name} value {value!r} is not in {rule.map}; add it to the map or set unmapped=keep|skip")
    return value
