"""The episode store: one zarr v3 group per dataset, the one on-disk format for datasets, demos and rollouts.

Layout (after diffusion_policy's replay buffer):

    data/action              float32 (T, A)         concatenated over all episodes
    data/state               float32 (T, S)         optional
    data/images/<camera>     uint8   (T, H, W, 3)   one frame per chunk, compressed
    data/<other>             any per-step array
    meta/episode_ends        int64   (N,)           cumulative exclusive end of each episode
    meta/<field>             (N,)                   per-episode values (task, domain, scene, success, ...)
    attributes               format, version, fps, robot, action_names, gripper_dims, cameras, state_names,
                             write_empty_chunks (stores written since every chunk file is kept)
    .remix-writer.lock       who appends right now (pid, host); an flock the kernel drops when it dies

Crash safety: a new store is built in a hidden folder and renamed into place, so it appears whole or
not at all. `add_episode` writes the step arrays first, the per-episode fields next and
`meta/episode_ends` last; zarr writes every chunk and metadata file atomically (temp file + rename).
Growing `meta/episode_ends` takes two writes (the shape, then the value), so a kill between them leaves
a last entry holding the fill value 0: that entry, and anything past the last committed end, is the
uncommitted tail. Opening ignores it before validating and appending cuts it off.

One writer at a time: `create` and `open(mode="a")` take an exclusive lock that lives until `close()`
(or the writer's death); a second writer gets a one-line error naming the holder. Readers never lock.

Integrity: new arrays carry a crc32c checksum per chunk and every chunk file is written (zarr skips
all-zero chunks by default, which would make a deleted chunk indistinguishable from a black frame).
`problems(deep=True)` reads every chunk: missing files, checksum and decompression failures.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from remix.common.errors import StoreError

FORMAT_NAME = "remix-episodes"
FORMAT_VERSION = 1
DEFAULT_ACTION_NAMES = ("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")
LOWDIM_CHUNK = 1024
FLOAT_KEYS = ("action", "state")
LOCK_NAME = ".remix-writer.lock"
MAX_ROWS = 10**10  # ~30 years of 10 Hz data: any larger row count in a zarr.json is corruption
_VALUE_CHECK_BLOCK = 1 << 16
_DEEP_READ_BYTES = 64 << 20
_COMPRESSORS = (ZstdCodec(level=0), Crc32cCodec())


def _write_frames(array: zarr.Array, start: int, frames: np.ndarray) -> bool:
    """Write the one-frame chunks of an unsharded image array straight to their files; False (nothing written)
    for any other layout.

    Why: with one chunk per frame, zarr's asynchronous codec pipeline (a thread hand-off per codec and per file)
    made the store the import's bottleneck: 1.2-1.6 ms of CPU per 224x224 frame against 0.24 ms for the zstd
    compression itself; this path takes ~0.75 ms, and a whole import gains 1.26-1.28x steps per CPU-second
    (benchmarks/import_throughput.py prints the ratio, both writers in one run). The bytes are zarr's own (bytes
    codec, zstd at the array's level, crc32c appended little-endian; tests/data/test_store_direct_writes.py
    compares the files), written through zarr's atomic `_put` (a temporary file renamed into place, so a kill
    never leaves half a chunk; the crash tests count these writes), a few frames at a time on threads.
    """
    from zarr.codecs import BytesCodec
    from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
    from zarr.storage import LocalStore

    metadata = array.metadata
    codecs = list(getattr(metadata, "codecs", ()))
    if (
        not isinstance(array.store, LocalStore)
        or getattr(metadata, "zarr_format", 2) != 3
        or array.shards is not None
        or array.chunks != (1, *frames.shape[1:])
        or frames.dtype != np.uint8
        or len(codecs) != 3
        or not isinstance(codecs[0], BytesCodec)
        or not isinstance(codecs[1], ZstdCodec)
        or codecs[1].checksum
        or not isinstance(codecs[2], Crc32cCodec)
        or not isinstance(metadata.chunk_key_encoding, DefaultChunkKeyEncoding)
        or metadata.chunk_key_encoding.separator != "/"
    ):
        return False
    try:  # zarr internals this path leans on; another zarr version without them takes zarr's own path
        import google_crc32c
        from numcodecs import Zstd
        from zarr.core.buffer.cpu import Buffer
        from zarr.storage import _local

        _local._put  # noqa: B018
        root = Path(str(array.store.root)) / array.store_path.path
    except (ImportError, AttributeError):
        return False
    compressor = Zstd(level=codecs[1].level, checksum=False)
    tail = "/".join("0" * (frames.ndim - 1))

    def write(index: int) -> None:
        data = bytes(compressor.encode(np.ascontiguousarray(frames[index])))
        data += google_crc32c.value(data).to_bytes(4, "little")
        _local._put(root / "c" / str(start + index) / tail, Buffer.from_bytes(data))  # looked up per call: tests count these

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:  # per call: a pool that outlived a fork would hang
        list(pool.map(write, range(len(frames))))
    return True


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


# --------------------------------------------------------------------------------------------- lock
class WriterLock:
    """Exclusive writer lock on `<store>/.remix-writer.lock` (flock: released by the kernel when the
    holder exits or is killed, so a dead writer's lock is simply taken over; the file names the holder)."""

    def __init__(self, store_path: Path, handle: Any) -> None:
        self.store_path = store_path
        self._handle = handle

    @classmethod
    def acquire(cls, store_path: Path) -> WriterLock:
        lock_path = store_path / LOCK_NAME
        try:
            handle = open(lock_path, "a+")  # noqa: SIM115 - held until release()
        except OSError as error:
            raise StoreError(f"cannot write to {store_path} ({error.strerror}); check its permissions or copy the store") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StoreError(
                f"{store_path} is being written by {holder}; wait for that writer to finish or write to another store"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        return cls(store_path, handle)

    def release(self) -> None:
        if self._handle is not None and not self._handle.closed:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
        self._handle = None


class StoreArray:
    """A zarr array of a store whose reads fail with a one-line StoreError instead of a codec traceback."""

    def __init__(self, array: zarr.Array, store_path: Path, complete: bool = False) -> None:
        self._array = array
        self._store_path = store_path
        self._complete = complete  # every chunk file was written: a missing one is damage, not zeros

    def __getitem__(self, selection: Any) -> np.ndarray:
        if self._complete:
            self._check_present(selection)
        try:
            return self._array[selection]
        except (IndexError, TypeError):
            raise
        except Exception as error:
            raise StoreError(
                f"{self._store_path}: {self._array.path} cannot be read "
                f"({type(error).__name__}: {str(error)[:120]}); run remix-data validate {self._store_path}"
            ) from None

    def _check_present(self, selection: Any) -> None:
        """Refuse to return a deleted chunk's fill value (zeros: black frames, zero actions) as data."""
        first = selection[0] if isinstance(selection, tuple) and selection else selection
        rows = self._array.shape[0]
        if isinstance(first, slice):
            start, stop, _ = first.indices(rows)
        elif isinstance(first, (int, np.integer)) and -rows <= int(first) < rows:
            start = int(first) % rows
            stop = start + 1
        else:
            return
        unit = (self._array.shards or self._array.chunks)[0]
        for index in range(start // unit, (stop - 1) // unit + 1) if stop > start else ():
            for coords in _chunk_coords(self._array, unit):
                key = self._array.metadata.encode_chunk_key((index, *coords[1:]))
                if not (self._store_path / self._array.path / key).exists():
                    raise StoreError(f"{self._store_path}: {self._array.path} chunk {index} is missing (rows from "
                                     f"{index * unit}); the store is damaged: run remix-data validate {self._store_path}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._array, name)

    def __len__(self) -> int:
        return len(self._array)


class EpisodeStore:
    """Episodes of a robot dataset, read lazily chunk by chunk and appended crash-safely by one writer."""

    direct_image_writes = True  # False: every chunk through zarr's own pipeline (the reference `_write_frames` matches)

    def __init__(self, path: Path, group: zarr.Group, lock: WriterLock | None = None) -> None:
        self.path = path
        self._group = group
        self._lock = lock
        self._writable = lock is not None
        self._ends, self.uncommitted_episodes = _committed_ends(group, path)

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
        shard_frames: int = 0,
    ) -> EpisodeStore:
        """Create an empty store, locked for writing; refuses to replace an existing path unless `overwrite`.

        It is built in a hidden folder and renamed into place, so no kill leaves a half-made store.
        `shard_frames` > 0 packs that many image frames into one zarr shard file (fewer files on big stores)."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise StoreError(f"{path} already exists; open it with mode='a' to append, or pass overwrite=True")
        action_names = tuple(action_names)
        bad = [d for d in gripper_dims if not 0 <= d < len(action_names)]
        if bad:
            raise StoreError(f"gripper dims {bad} are outside the {len(action_names)} action dims of {path}")
        if not np.isfinite(float(fps)) or float(fps) <= 0:
            raise StoreError(f"store fps must be a positive number, got {fps!r}")
        tmp = path.parent / f".{path.name}.creating-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            group = zarr.open_group(tmp, mode="w")
        except OSError as error:
            raise StoreError(f"cannot create a store at {path} ({error.strerror or error}); choose a writable folder") from None
        lock = WriterLock.acquire(tmp)
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
                "write_empty_chunks": True,
                **({"shard_frames": int(shard_frames)} if shard_frames else {}),
            }
        )
        group.create_array("meta/episode_ends", shape=(0,), dtype="int64", chunks=(LOWDIM_CHUNK,),
                           compressors=_COMPRESSORS)
        cls._move_into_place(tmp, path, lock)
        return cls(path, zarr.open_group(path, mode="r+"), lock)

    @staticmethod
    def _move_into_place(tmp: Path, path: Path, lock: WriterLock) -> None:
        old_lock = None
        trash = path.parent / f".{path.name}.replaced-{uuid.uuid4().hex[:8]}"
        try:
            if path.exists():  # overwrite=True: only when nobody is writing the old store
                old_lock = WriterLock.acquire(path) if path.is_dir() else None
                os.rename(path, trash)
            os.rename(tmp, path)
        except OSError:
            lock.release()
            shutil.rmtree(tmp, ignore_errors=True)
            if old_lock is not None:
                old_lock.release()
            holder = _lock_holder(path)
            raise StoreError(f"{path} was created at the same moment by another writer ({holder}); "
                             "wait for it to finish, then append with mode='a', or choose another path") from None
        except StoreError:
            lock.release()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        lock.store_path = path
        if old_lock is not None:
            old_lock.release()
        if trash.exists():
            shutil.rmtree(trash) if trash.is_dir() else trash.unlink()

    @classmethod
    def open(cls, path: str | Path, mode: str = "r", check_values: bool = True) -> EpisodeStore:
        """Open and validate a store. mode 'r' reads; 'a' locks it for appending and drops any half-written
        episode. The uncommitted tail a killed writer left is ignored before validating."""
        store = cls._open_unchecked(path, mode)
        problems = store.problems(check_values)
        if problems:
            store.close()
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
        version = attrs.get("version", 0)
        if not isinstance(version, int) or isinstance(version, bool):
            raise StoreError(f"{path} has a corrupt version attribute {version!r} (an integer is expected); re-create the store")
        if version > FORMAT_VERSION:
            raise StoreError(f"{path} has store format version {version}; upgrade remix to read it")
        try:
            if "meta/episode_ends" not in group:
                raise StoreError(f"{path} has no meta/episode_ends; the store is corrupt, re-create or re-convert it")
            lock = WriterLock.acquire(path) if mode == "a" else None
        except StoreError:
            raise
        except Exception as error:
            raise StoreError(f"{path} has unreadable metadata ({type(error).__name__}); the store is corrupt") from None
        try:
            store = cls(path, group, lock)
            store._check_metadata()
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return store

    def _check_metadata(self) -> None:
        """Every array's zarr.json parses and claims a sane size (reading a 10^15-row claim would hang)."""
        try:
            arrays = [(f"data/{key}", self._group[f"data/{key}"]) for key in self.keys]
            arrays += [(f"meta/{name}", self._group[f"meta/{name}"]) for name in self.fields]
        except Exception as error:
            raise StoreError(f"{self.path} has unreadable array metadata ({type(error).__name__}: "
                             f"{str(error)[:100]}); the store is corrupt") from None
        for name, array in arrays:
            if array.ndim == 0 or array.shape[0] > MAX_ROWS:
                raise StoreError(f"{self.path}: {name} claims shape {array.shape}; its zarr.json is corrupt")

    # ----------------------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Release the writer lock (a read-only store has none); the store stays readable."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self._writable = False

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

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

    def array(self, key: str) -> StoreArray:
        """The lazily read array data/<key> (it may hold uncommitted steps past `num_steps`)."""
        try:
            return StoreArray(self._group[f"data/{key}"], self.path, bool(self._group.attrs.get("write_empty_chunks")))
        except KeyError:
            raise StoreError(f"{self.path} has no data key {key!r}; it has {list(self.keys)}") from None

    def read_episode(self, index: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        start, stop = self.episode_bounds(index)
        return {key: self.array(key)[start:stop] for key in (keys or self.keys)}

    def field(self, name: str) -> np.ndarray:
        """Per-episode values of a meta field, one per committed episode (strings as str objects)."""
        if name not in self.fields:
            raise StoreError(f"{self.path} has no per-episode field {name!r}; it has {list(self.fields)}")
        complete = bool(self._group.attrs.get("write_empty_chunks"))
        values = StoreArray(self._group[f"meta/{name}"], self.path, complete)[: self.num_episodes]
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
            target = self._writer(self._data_array(key, value))
            target.resize((start + length, *value.shape[1:]))
            if not (self.direct_image_writes and _write_frames(target, start, value)):
                target[start : start + length] = value
        for name, value in fields.items():
            self._write_field(name, value)
        for name in self.fields:
            if name not in fields:
                self._write_field(name, None)
        ends = self._writer(self._group["meta/episode_ends"])
        ends.resize((self.num_episodes + 1,))  # a kill here leaves a trailing 0: uncommitted, ignored on open
        ends[self.num_episodes] = start + length  # the commit
        self._ends = np.append(self._ends, start + length)
        return self.num_episodes - 1

    def _writer(self, array: zarr.Array) -> zarr.Array:
        """The array set to write every chunk, so that a missing chunk file always means damage."""
        return array.with_config({"write_empty_chunks": True}) if self.attrs.get("write_empty_chunks") else array

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
        if existing and not self.num_episodes:  # arrays a writer killed in the first episode left: none committed
            for key in existing - set(prepared):
                del self._group[f"data/{key}"]
        elif existing and existing != set(prepared):
            raise StoreError(f"episode keys {sorted(prepared)} differ from the store's {sorted(existing)}")
        return prepared

    def _data_array(self, key: str, value: np.ndarray) -> zarr.Array:
        name = f"data/{key}"
        if name in self._group:
            return self._group[name]
        shards = None
        if key.startswith("images/"):
            chunks = (1, *value.shape[1:])
            frames = int(self.attrs.get("shard_frames") or 0)
            shards = (frames, *value.shape[1:]) if frames > 1 else None
        else:
            chunks = (LOWDIM_CHUNK, *value.shape[1:])
        return self._group.create_array(name, shape=(0, *value.shape[1:]), dtype=value.dtype, chunks=chunks,
                                        shards=shards, compressors=_COMPRESSORS)

    def _write_field(self, name: str, value: Any) -> None:
        path = f"meta/{name}"
        index = self.num_episodes
        if path not in self._group:
            if value is None:
                return
            self._create_field(name, _field_dtype(value), index)
        array = self._writer(self._group[path])
        if value is None:
            value = _field_default(array.dtype)
        array.resize((index + 1,))
        array[index] = value

    def _create_field(self, name: str, dtype: Any, rows: int) -> None:
        """A new per-episode field holding the default for the `rows` earlier episodes; built aside and renamed
        into meta/ so that a kill never leaves it with missing chunks."""
        staging = self.path / f".staging-{name}"
        shutil.rmtree(staging, ignore_errors=True)
        array = zarr.create_array(staging, shape=(rows,), dtype=dtype, chunks=(LOWDIM_CHUNK,), compressors=_COMPRESSORS,
                                  config={"write_empty_chunks": True})
        if rows:
            default = _field_default(array.dtype)
            array[:] = np.full(rows, default, dtype=array.dtype if dtype is not str else object)
        os.rename(staging, self.path / "meta" / name)

    def _drop_uncommitted(self) -> None:
        """Cut off what a crashed writer appended after the last committed episode (episode_ends first)."""
        ends = self._group["meta/episode_ends"]
        if ends.shape[0] > self.num_episodes:
            ends.resize((self.num_episodes,))
        for key in self.keys:
            array = self._group[f"data/{key}"]
            if array.shape[0] > self.num_steps:
                array.resize((self.num_steps, *array.shape[1:]))
        for name in self.fields:
            array = self._group[f"meta/{name}"]
            if array.shape[0] > self.num_episodes:
                array.resize((self.num_episodes,))
        self.uncommitted_episodes = 0

    # ----------------------------------------------------------------------------- validation
    def problems(self, check_values: bool = True, deep: bool = False) -> list[str]:
        """Every inconsistency found, one line each (empty for a healthy store).

        `check_values` reads every low-dim chunk (NaN/inf, unreadable or missing chunks); `deep` also
        reads every image chunk and every per-episode field, so any damage on disk is found."""
        ends = self._ends
        if len(ends) and (ends[0] <= 0 or np.any(np.diff(ends) <= 0)):
            bad = 0 if ends[0] <= 0 else int(np.argmax(np.diff(ends) <= 0)) + 1
            return [
                f"{self.path}: meta/episode_ends is not strictly increasing at episode {bad} "
                f"(ends {ends[max(bad - 1, 0): bad + 1].tolist()}); the store is corrupt, re-convert it"
            ]
        found = self._attribute_problems()
        keys = self.keys
        if self.num_episodes and "action" not in keys:
            found.append(f"{self.path} has episodes but no data/action; the store is corrupt, re-convert it")
        short = False
        for key in keys:
            array = self._group[f"data/{key}"]
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
        if found or short:
            return found
        if check_values or deep:
            found += self._chunk_problems(deep)
        if check_values and not found:
            for key in (k for k in FLOAT_KEYS if k in keys):
                problem = self._first_non_finite(key)
                if problem:
                    found.append(problem)
        return found

    def _attribute_problems(self) -> list[str]:
        """Attributes that contradict each other or the arrays (each would mislead training or the robot)."""
        attrs, path, found = self.attrs, self.path, []
        fps = attrs.get("fps")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0:
            found.append(f"{path}: attribute fps is {fps!r}; set it to the recording rate in Hz (a positive number)")
        names = attrs.get("action_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            return found + [f"{path}: attribute action_names is {names!r}; it must list the action dims' names"]
        grippers = attrs.get("gripper_dims")
        if not isinstance(grippers, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < len(names) for d in grippers
        ):
            found.append(f"{path}: attribute gripper_dims {grippers!r} must be action dims in 0..{len(names) - 1}")
        keys = self.keys
        if "action" in keys:
            shape = self._group["data/action"].shape
            if len(shape) != 2 or shape[1] != len(names):
                found.append(f"{path}: data/action has shape {shape} but the store names {len(names)} action dims "
                             "(steps x dims expected); re-convert the store")
        state_names = attrs.get("state_names")
        if "state" in keys:
            shape = self._group["data/state"].shape
            if len(shape) != 2 or (isinstance(state_names, list) and shape[1] != len(state_names)):
                found.append(f"{path}: data/state has shape {shape} but state_names has "
                             f"{len(state_names) if isinstance(state_names, list) else '?'} entries; re-convert the store")
        return found + self._camera_problems(attrs.get("cameras"), keys)

    def _camera_problems(self, cameras: Any, keys: Sequence[str]) -> list[str]:
        path = self.path
        if not isinstance(cameras, dict) or not all(
            isinstance(hw, list) and len(hw) == 2 and all(isinstance(v, int) and v > 0 for v in hw) for hw in cameras.values()
        ):
            return [f"{path}: attribute cameras {cameras!r} must map each camera to [height, width]"]
        found = []
        for key in (k for k in keys if k.startswith("images/")):
            camera, shape = key.split("/", 1)[1], self._group[f"data/{key}"].shape
            if camera not in cameras:
                found.append(f"{path}: data/{key} is not declared in the cameras attribute {sorted(cameras)}")
            elif tuple(shape[1:]) != (*cameras[camera], 3):
                found.append(f"{path}: data/{key} holds frames of {tuple(shape[1:])} but the cameras attribute says "
                             f"{cameras[camera]}; fix the attribute or re-convert the store")
        return found

    def _chunk_problems(self, deep: bool) -> list[str]:
        """Missing chunk files and chunks that fail to decompress or checksum, over the committed rows."""
        found: list[str] = []
        complete = bool(self.attrs.get("write_empty_chunks"))
        arrays = [(f"data/{k}", self.num_steps) for k in self.keys if deep or not k.startswith("images/")]
        if deep or complete:
            arrays += [(f"meta/{n}", self.num_episodes) for n in self.fields]
        arrays.append(("meta/episode_ends", self.num_episodes))
        for name, rows in arrays:
            array = self._group[name]
            # stores written before every chunk was kept legitimately omit all-zero images and fields
            if complete or (name.startswith("data/") and not name.startswith("data/images/")) or name.endswith("ends"):
                missing = self._missing_chunk(array, rows)
                if missing is not None:
                    found.append(f"{self.path}: {name} chunk {missing} is missing (rows from {missing * array.chunks[0]}); "
                                 "the store is damaged: restore it from a copy or drop the affected episodes")
                    continue
            if deep or not name.startswith("data/images/"):
                problem = self._unreadable_chunk(array, name, rows)
                if problem:
                    found.append(problem)
        return found

    def _missing_chunk(self, array: zarr.Array, rows: int) -> int | None:
        """The first chunk along dim 0 that should hold committed rows but has no file."""
        if rows == 0:
            return None
        for coords in _chunk_coords(array, rows):
            if not (self.path / array.path / array.metadata.encode_chunk_key(coords)).exists():
                return coords[0] * (array.shards or array.chunks)[0] // array.chunks[0]
        return None

    def _unreadable_chunk(self, array: zarr.Array, name: str, rows: int) -> str | None:
        chunk = array.chunks[0]
        row_bytes = max(1, int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize)
        block = max(chunk, (_DEEP_READ_BYTES // row_bytes) // chunk * chunk)
        for start in range(0, rows, block):
            try:
                array[start : min(start + block, rows)]
            except Exception:
                for first in range(start, min(start + block, rows), chunk):
                    try:
                        array[first : min(first + chunk, rows)]
                    except Exception as error:
                        return (f"{self.path}: {name} chunk {first // chunk} (rows from {first}) cannot be read "
                                f"({type(error).__name__}: {str(error)[:80]}); the store is damaged: restore it from "
                                "a copy or drop the affected episodes")
        return None

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
        with warnings.catch_warnings():  # a folder a killed writer left without its zarr.json is no member
            warnings.filterwarnings("ignore", "Object at .* is not recognized", category=UserWarning)
            members = list(group.members())
        for name, member in members:
            key = f"{prefix}{name}"
            if isinstance(member, zarr.Array):
                found.append(key)
            else:
                EpisodeStore._collect_arrays(member, f"{key}/", found)

    def __repr__(self) -> str:
        return f"EpisodeStore({str(self.path)!r}, episodes={self.num_episodes}, steps={self.num_steps})"


def _lock_holder(path: Path) -> str:
    try:
        return (path / LOCK_NAME).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _chunk_coords(array: zarr.Array, rows: int) -> Iterator[tuple[int, ...]]:
    """Coordinates of the stored objects (shards when sharded, else chunks) holding rows [0, rows)."""
    unit = array.shards or array.chunks
    grid = [int(np.ceil(rows / unit[0]))] + [int(np.ceil(n / u)) for n, u in zip(array.shape[1:], unit[1:])]
    yield from np.ndindex(*grid)


def _committed_ends(group: zarr.Group, path: Path) -> tuple[np.ndarray, int]:
    """The committed episode ends and how many uncommitted entries follow them (0 or 1).

    Only the last entry can be uncommitted: a writer killed between growing the array and writing
    the value leaves the fill value 0 there (or a value not above the previous end)."""
    raw = group["meta/episode_ends"]
    if raw.ndim != 1 or raw.dtype.kind not in "iu":
        raise StoreError(f"{path}: meta/episode_ends has dtype {raw.dtype} and shape {raw.shape}; episode ends must be "
                         "a 1-d integer array, the store is corrupt")
    if raw.shape[0] > MAX_ROWS:
        raise StoreError(f"{path}: meta/episode_ends claims {raw.shape[0]} episodes; its zarr.json is corrupt")
    try:
        ends = np.asarray(raw[:], dtype=np.int64)
    except Exception as error:
        raise StoreError(f"{path}: meta/episode_ends cannot be read ({type(error).__name__}); the store is damaged, "
                         "restore it from a copy") from None
    if len(ends) and ends[-1] <= (ends[-2] if len(ends) > 1 else 0):
        return ends[:-1], 1
    return ends, 0


def validate_store(path: str | Path, deep: bool = True) -> list[str]:
    """All problems of the store at `path`, one line each; empty when it is healthy. Never modifies it.

    `deep` reads every chunk of every array (slow on big image stores, but finds any damage)."""
    try:
        return EpisodeStore._open_unchecked(path, "r").problems(check_values=True, deep=deep)
    except StoreError as error:
        return [str(error)]
