"""The episode store: one zarr v3 group per dataset, the one on-disk format for datasets, demos and rollouts.

Layout (after diffusion_policy's replay buffer):

    data/action              float32 (T, A)         concatenated over all episodes
    data/state               float32 (T, S)         optional
    data/images/<camera>     uint8   (T, H, W, 3)   one frame per chunk, compressed
    data/<other>             any per-step array
    meta/episode_ends        int64   (N,)           cumulative exclusive end of each episode
    meta/<field>             (N,)                   per-episode values (task, domain, scene, success, ...)
    attributes               format, version, fps, robot, action_names, gripper_dims, cameras, state_names

Crash safety: `add_episode` writes the step arrays first, the per-episode fields next and
`meta/episode_ends` last, so an episode exists only once it is complete (zarr writes every chunk and
metadata file atomically). Anything past the last committed end is ignored when reading and cut off
when the store is opened for appending.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from remix.common.errors import StoreError

FORMAT_NAME = "remix-episodes"
FORMAT_VERSION = 1
DEFAULT_ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
LOWDIM_CHUNK = 1024
FLOAT_KEYS = ("action", "state")
_VALUE_CHECK_BLOCK = 1 << 16


def _field_default(dtype: np.dtype) -> Any:
    if dtype.kind in "UTO":
        return ""
    if dtype.kind == "b":
        return False
    if dtype.kind == "f":
        return np.nan
    return 0


def _field_dtype(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool
    if isinstance(value, (int, np.integer)):
        return "int64"
    if isinstance(value, (float, np.floating)):
        return "float64"
    if isinstance(value, str):
        return str
    raise StoreError(
        f"per-episode field value {value!r} has type {type(value).__name__}; use a str, int, float or bool"
    )


class EpisodeStore:
    """Episodes of a robot dataset, read lazily chunk by chunk and appended crash-safely."""

    def __init__(self, path: Path, group: zarr.Group, writable: bool) -> None:
        self.path = path
        self._group = group
        self._writable = writable
        self._ends = np.asarray(group["meta/episode_ends"][:], dtype=np.int64)

    # ----------------------------------------------------------------------------- create / open
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        fps: float,
        robot: str = "unknown",
        action_names: Sequence[str] = DEFAULT_ACTION_NAMES,
        gripper_dims: Sequence[int] = (6,),
        cameras: Mapping[str, tuple[int, int]] | None = None,
        state_names: Sequence[str] | None = None,
        overwrite: bool = False,
    ) -> EpisodeStore:
        """Create an empty store; refuses to replace an existing path unless `overwrite`."""
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise StoreError(f"{path} already exists; open it with mode='a' to append, or pass overwrite=True")
            shutil.rmtree(path)
        action_names = tuple(action_names)
        bad = [d for d in gripper_dims if not 0 <= d < len(action_names)]
        if bad:
            raise StoreError(f"gripper dims {bad} are outside the {len(action_names)} action dims of {path}")
        group = zarr.open_group(path, mode="w")
        group.attrs.update(
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "fps": float(fps),
                "robot": robot,
                "action_names": list(action_names),
                "gripper_dims": [int(d) for d in gripper_dims],
                "cameras": {name: [int(h), int(w)] for name, (h, w) in (cameras or {}).items()},
                "state_names": list(state_names) if state_names is not None else None,
            }
        )
        group.create_array("meta/episode_ends", shape=(0,), dtype="int64", chunks=(LOWDIM_CHUNK,))
        return cls(path, group, writable=True)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r", check_values: bool = True) -> EpisodeStore:
        """Open and validate a store. mode 'r' reads; 'a' appends and drops any half-written episode."""
        store = cls._open_unchecked(path, mode)
        problems = store.problems(check_values)
        if problems:
            more = f" (+{len(problems) - 1} more: run remix-data validate {path})" if len(problems) > 1 else ""
            raise StoreError(problems[0] + more)
        if mode == "a":
            store._drop_uncommitted()
        return store

    @classmethod
    def _open_unchecked(cls, path: str | Path, mode: str) -> EpisodeStore:
        if mode not in ("r", "a"):
            raise StoreError(f"unknown store mode {mode!r}; use 'r' to read or 'a' to append")
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no episode store at {path}; check the path or create one (remix-data synthetic OUT)")
        try:
            group = zarr.open_group(path, mode="r+" if mode == "a" else "r")
        except Exception as error:  # zarr raises several types for a non-store folder
            raise StoreError(f"{path} is not a zarr store ({error.__class__.__name__}); point to a .zarr episode store") from None
        attrs = dict(group.attrs)
        if attrs.get("format") != FORMAT_NAME:
            raise StoreError(f"{path} is not a Re-Mix episode store (format attribute {attrs.get('format')!r}); convert it first")
        if attrs.get("version", 0) > FORMAT_VERSION:
            raise StoreError(f"{path} has store format version {attrs['version']}; upgrade remix to read it")
        if "meta/episode_ends" not in group:
            raise StoreError(f"{path} has no meta/episode_ends; the store is corrupt, re-create or re-convert it")
        return cls(path, group, writable=mode == "a")

    # ----------------------------------------------------------------------------- properties
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    @property
    def fps(self) -> float:
        return float(self._group.attrs["fps"])

    @property
    def robot(self) -> str:
        return str(self._group.attrs["robot"])

    @property
    def action_names(self) -> tuple[str, ...]:
        return tuple(self._group.attrs["action_names"])

    @property
    def gripper_dims(self) -> tuple[int, ...]:
        return tuple(self._group.attrs["gripper_dims"])

    @property
    def cameras(self) -> dict[str, tuple[int, int]]:
        return {name: (hw[0], hw[1]) for name, hw in self._group.attrs["cameras"].items()}

    @property
    def state_names(self) -> tuple[str, ...] | None:
        names = self._group.attrs.get("state_names")
        return tuple(names) if names is not None else None

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def num_episodes(self) -> int:
        return len(self._ends)

    @property
    def num_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self._ends, prepend=0)

    @property
    def keys(self) -> tuple[str, ...]:
        """Per-step data keys, e.g. ('action', 'state', 'images/cam0')."""
        if "data" not in self._group:
            return ()
        found: list[str] = []
        self._collect_arrays(self._group["data"], "", found)
        return tuple(sorted(found))

    @property
    def fields(self) -> tuple[str, ...]:
        """Names of the per-episode fields under meta/ (episode_ends excluded)."""
        meta = self._group["meta"]
        return tuple(sorted(name for name in meta.array_keys() if name != "episode_ends"))

    # ----------------------------------------------------------------------------- reading
    def episode_bounds(self, index: int) -> tuple[int, int]:
        if not -self.num_episodes <= index < self.num_episodes:
            raise IndexError(f"episode {index} out of range for {self.num_episodes} episodes in {self.path}")
        index %= self.num_episodes
        start = int(self._ends[index - 1]) if index > 0 else 0
        return start, int(self._ends[index])

    def array(self, key: str) -> zarr.Array:
        """The lazily read array data/<key> (it may hold uncommitted steps past `num_steps`)."""
        try:
            return self._group[f"data/{key}"]
        except KeyError:
            raise StoreError(f"{self.path} has no data key {key!r}; it has {list(self.keys)}") from None

    def read_episode(self, index: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        start, stop = self.episode_bounds(index)
        return {key: self.array(key)[start:stop] for key in (keys or self.keys)}

    def field(self, name: str) -> np.ndarray:
        """Per-episode values of a meta field, one per committed episode (strings as str objects)."""
        if name not in self.fields:
            raise StoreError(f"{self.path} has no per-episode field {name!r}; it has {list(self.fields)}")
        values = self._group[f"meta/{name}"][: self.num_episodes]
        return values.astype(object) if values.dtype.kind in "TUO" else values

    def episode_of_step(self, steps: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._ends, steps, side="right")

    # ----------------------------------------------------------------------------- writing
    def add_episode(self, arrays: Mapping[str, np.ndarray], **fields: Any) -> int:
        """Append one whole episode and return its index; visible only once every array is written."""
        if not self._writable:
            raise StoreError(f"{self.path} is open read-only; open it with mode='a' to add episodes")
        prepared = self._check_episode(arrays)
        length = len(prepared["action"])
        start = self.num_steps
        for key, value in prepared.items():
            target = self._data_array(key, value)
            target.resize((start + length, *value.shape[1:]))
            target[start : start + length] = value
        for name, value in fields.items():
            self._write_field(name, value)
        for name in self.fields:
            if name not in fields:
                self._write_field(name, None)
        ends = self._group["meta/episode_ends"]
        ends.resize((self.num_episodes + 1,))
        ends[self.num_episodes] = start + length
        self._ends = np.append(self._ends, start + length)
        return self.num_episodes - 1

    def _check_episode(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if "action" not in arrays:
            raise StoreError(f"episode for {self.path} has no 'action' array; every episode needs one")
        prepared: dict[str, np.ndarray] = {}
        for key, value in arrays.items():
            value = np.asarray(value)
            if key in FLOAT_KEYS:
                value = value.astype(np.float32, copy=False)
                if value.ndim != 2:
                    raise StoreError(f"episode {key!r} must be 2-d (steps x dims), got shape {value.shape}")
                bad = np.argwhere(~np.isfinite(value))
                if len(bad):
                    raise StoreError(
                        f"episode {key!r} has a NaN/inf value at step {bad[0][0]}, dim {bad[0][1]}; "
                        "fix or drop the episode before adding it (nothing was written)"
                    )
            if key.startswith("images/"):
                camera = key.split("/", 1)[1]
                if camera not in self.cameras:
                    raise StoreError(f"camera {camera!r} is not declared in {self.path}; it has {list(self.cameras)}")
                height, width = self.cameras[camera]
                if value.dtype != np.uint8 or value.shape[1:] != (height, width, 3):
                    raise StoreError(
                        f"images of camera {camera!r} must be uint8 (T, {height}, {width}, 3), got "
                        f"{value.dtype} {value.shape}; resize the frames to the store's camera size"
                    )
            prepared[key] = value
        action_dim = len(self.action_names)
        if prepared["action"].shape[1] != action_dim:
            raise StoreError(
                f"episode actions have {prepared['action'].shape[1]} dims but {self.path} has {action_dim} "
                f"({', '.join(self.action_names)})"
            )
        lengths = {key: len(value) for key, value in prepared.items()}
        if len(set(lengths.values())) != 1 or lengths["action"] == 0:
            raise StoreError(f"episode arrays must share one non-zero length, got {lengths}")
        existing = set(self.keys)
        if existing and existing != set(prepared):
            raise StoreError(f"episode keys {sorted(prepared)} differ from the store's {sorted(existing)}")
        return prepared

    def _data_array(self, key: str, value: np.ndarray) -> zarr.Array:
        name = f"data/{key}"
        if name in self._group:
            return self._group[name]
        if key.startswith("images/"):
            chunks = (1, *value.shape[1:])
        else:
            chunks = (LOWDIM_CHUNK, *value.shape[1:])
        return self._group.create_array(name, shape=(0, *value.shape[1:]), dtype=value.dtype, chunks=chunks)

    def _write_field(self, name: str, value: Any) -> None:
        path = f"meta/{name}"
        index = self.num_episodes
        if path not in self._group:
            if value is None:
                return
            dtype = _field_dtype(value)
            array = self._group.create_array(path, shape=(index,), dtype=dtype, chunks=(LOWDIM_CHUNK,))
            if index:
                array[:] = np.full(index, _field_default(array.dtype), dtype=array.dtype if dtype is not str else object)
        array = self._group[path]
        if value is None:
            value = _field_default(array.dtype)
        array.resize((index + 1,))
        array[index] = value

    def _drop_uncommitted(self) -> None:
        """Cut off what a crashed writer appended after the last committed episode."""
        for key in self.keys:
            array = self.array(key)
            if array.shape[0] > self.num_steps:
                array.resize((self.num_steps, *array.shape[1:]))
        for name in self.fields:
            array = self._group[f"meta/{name}"]
            if array.shape[0] > self.num_episodes:
                array.resize((self.num_episodes,))

    # ----------------------------------------------------------------------------- validation
    def problems(self, check_values: bool = True) -> list[str]:
        """Every inconsistency found, one line each (empty for a healthy store)."""
        found: list[str] = []
        ends = self._ends
        if len(ends) and (ends[0] <= 0 or np.any(np.diff(ends) <= 0)):
            bad = 0 if ends[0] <= 0 else int(np.argmax(np.diff(ends) <= 0)) + 1
            found.append(
                f"{self.path}: meta/episode_ends is not strictly increasing at episode {bad} "
                f"(ends {ends[max(bad - 1, 0): bad + 1].tolist()}); the store is corrupt, re-convert it"
            )
            return found
        keys = self.keys
        if self.num_episodes and "action" not in keys:
            found.append(f"{self.path} has episodes but no data/action; the store is corrupt, re-convert it")
        short = False
        for key in keys:
            array = self.array(key)
            if array.shape[0] < self.num_steps:
                short = True
                episode = int(self.episode_of_step(np.array([array.shape[0]]))[0])
                found.append(
                    f"{self.path}: data/{key} has {array.shape[0]} steps but meta/episode_ends needs "
                    f"{self.num_steps} (episode {episode} is cut short); re-convert the store or drop its last episodes"
                )
            expected = np.uint8 if key.startswith("images/") else (np.float32 if key in FLOAT_KEYS else None)
            if expected is not None and array.dtype != expected:
                found.append(
                    f"{self.path}: data/{key} has dtype {array.dtype}, expected {np.dtype(expected)}; re-convert the store"
                )
        for name in self.fields:
            length = self._group[f"meta/{name}"].shape[0]
            if length < self.num_episodes:
                found.append(
                    f"{self.path}: meta/{name} has {length} entries for {self.num_episodes} episodes; "
                    "re-convert the store or fill the field"
                )
        if check_values and not short:
            for key in (k for k in FLOAT_KEYS if k in keys):
                problem = self._first_non_finite(key)
                if problem:
                    found.append(problem)
        return found

    def _first_non_finite(self, key: str) -> str | None:
        array = self.array(key)
        for start in range(0, self.num_steps, _VALUE_CHECK_BLOCK):
            block = array[start : min(start + _VALUE_CHECK_BLOCK, self.num_steps)]
            bad = np.argwhere(~np.isfinite(block))
            if len(bad):
                step = start + int(bad[0][0])
                episode = int(self.episode_of_step(np.array([step]))[0])
                first, _ = self.episode_bounds(episode)
                return (
                    f"{self.path}: data/{key} has a NaN/inf at episode {episode}, step {step - first} "
                    f"(dim {int(bad[0][1])}); clean the source data and re-convert"
                )
        return None

    @staticmethod
    def _collect_arrays(group: zarr.Group, prefix: str, found: list[str]) -> None:
        for name, member in group.members():
            key = f"{prefix}{name}"
            if isinstance(member, zarr.Array):
                found.append(key)
            else:
                EpisodeStore._collect_arrays(member, f"{key}/", found)

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, episodes={self.num_episodes}, steps={self.num_steps})"


def validate_store(path: str | Path) -> list[str]:
    """All problems of the store at `path`, one line each; empty when it is healthy. Never modifies it."""
    try:
        return EpisodeStore._open_unchecked(path, "r").problems(check_values=True)
    except StoreError as error:
        return [str(error)]
