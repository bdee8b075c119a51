"""Typed dataclasses as the one source of configuration defaults, for hydra and for the Python API.

Each console script's settings are a dataclass (nested dataclasses for its sections). `schema(cls)`
mirrors it as a hydra structured config (same names, same defaults, types OmegaConf can check), which
`register` stores in hydra's ConfigStore; the YAML files in `configs/` only pick that schema and hold
presets. `build(cls, cfg)` turns the composed config back into the real (frozen, validated) dataclass,
so no CLI copies values field by field and a default is written exactly once: in the dataclass.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from remix.common.errors import ConfigError

_PRIMITIVES = (int, float, bool, str, Path)


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that only exists for type checkers: treat those fields as Any
        return {f.name: Any for f in dataclasses.fields(cls)}


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _checked_type(tp: Any) -> Any:
    """The closest annotation OmegaConf can check: primitives, Optional primitives, lists, dataclasses; else Any."""
    if tp in _PRIMITIVES:
        return tp
    if dataclasses.is_dataclass(tp):
        return schema(tp)
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            inner = _checked_type(args[0])
            return inner if inner is Any else typing.Optional[inner]  # noqa: UP045 - OmegaConf wants Optional
        return Any
    origin = typing.get_origin(tp)
    if origin in (tuple, list, Sequence):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        element = args[0] if args and all(a == args[0] for a in args) and args[0] in _PRIMITIVES else Any
        return list[element]  # type: ignore[valid-type]
    return Any


@functools.cache
def schema(cls: type) -> type:
    """A structured-config dataclass with `cls`'s fields and defaults, typed so that OmegaConf checks values."""
    hints = _hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if not f.init or (f.name.startswith("_") and f.name != "_target_"):
            continue
        tp = _checked_type(hints.get(f.name, Any))
        if dataclasses.is_dataclass(hints.get(f.name)):
            specs.append((f.name, tp, dataclasses.field(default_factory=tp)))
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "???"  # required: OmegaConf's missing value
        if isinstance(default, tuple | list | dict):
            specs.append((f.name, tp, dataclasses.field(default_factory=functools.partial(_plain_copy, default))))
        else:
            specs.append((f.name, tp, dataclasses.field(default=default)))
    return dataclasses.make_dataclass(f"{cls.__name__}Schema", specs)


def _plain_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain_copy(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain_copy(v) for v in value]
    return value


def register(name: str, cls: type) -> None:
    """Store `cls`'s schema in hydra's ConfigStore as `name`; a YAML config selects it in its defaults list."""
    ConfigStore.instance().store(name=name, node=schema(cls))


def build(cls: type, cfg: Any, key: str = "") -> Any:
    """The dataclass `cls` from a composed config (or mapping): nested sections too, lists -> tuples.

    Values the dataclass rejects (its `__post_init__` checks) surface as one-line ConfigErrors.
    """
    values = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name not in values:
            continue
        kwargs[f.name] = _value(hints.get(f.name, Any), values[f.name], f"{key}{f.name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"bad value in {key.rstrip('.') or 'the config'}: {error}") from None


def _value(tp: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return build(tp, value, f"{key}.")
    if _is_union(tp):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(options) == 1:
            return _value(options[0], value, key)
        return _plain_tuple(value) if isinstance(value, list) and any(typing.get_origin(o) is tuple for o in options) else value
    if typing.get_origin(tp) is tuple and isinstance(value, list | tuple):
        return _plain_tuple(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    return value


def _plain_tuple(value: Any) -> Any:
    return tuple(_plain_tuple(v) for v in value) if isinstance(value, list | tuple) else value


def defaults_of(cls: type) -> dict[str, Any]:
    """`cls`'s defaults as plain data (what the CLI runs with when given nothing)."""
    return OmegaConf.to_container(OmegaConf.structured(schema(cls)), resolve=False)  # type: ignore[return-value]
