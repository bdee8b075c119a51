"""Import a whole source into an episode store: detect the format, check the mapping, decode, write, resume.

Decoding runs in `workers` processes that each read whole episodes and hand finished arrays to the one
writer (this process), which appends them in source order. A rerun into the same `out` skips every
(source, source_index) already committed, so an import killed at any moment resumes where it stopped and
loses at most the episode in flight (the store commits an episode by writing meta/episode_ends last).
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import zarr

from remix.common.errors import StoreError
from remix.data.importers.common import EpisodeRef, SourceEpisode, SourceError, resize_image, to_rgb
from remix.data.importers.convert import build_episode, default_action_names, default_gripper_dims
from remix.data.importers.fields import SkipEpisode
from remix.data.importers.options import ImportOptions
from remix.data.store import EpisodeStore


class SourceReader(Protocol):
    format: str
    path: Path
    fps: float | None

    @property
    def step_keys(self) -> list[str]: ...

    @property
    def meta_keys(self) -> list[str]: ...

    def refs(self) -> list[EpisodeRef]: ...

    def read(self, ref: EpisodeRef, keys: set[str] | None = None) -> SourceEpisode: ...


@dataclass
class ImportResult:
    out: Path
    added: int = 0
    already: int = 0
    steps: int = 0
    seconds: float = 0.0
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) or "none"
        rate = self.steps / self.seconds if self.seconds else 0.0
        return (
            f"imported {self.added} episodes ({self.steps} steps, {rate:.0f} steps/s) into {self.out}; "
            f"{self.already} already there; skipped: {skipped}"
        )


def detect_format(src: Path) -> str:
    """rlds | lerobot | robomimic | replay_buffer, from the files that each format always has."""
    if not src.exists():
        raise SourceError(f"{src} does not exist; check the source path")
    if src.is_dir() and (src / "dataset_info.json").exists() and (src / "features.json").exists():
        return "rlds"
    if src.is_dir() and (src / "meta" / "info.json").exists():
        return "lerobot"
    if src.is_file() and src.suffix in (".hdf5", ".h5"):
        return "robomimic"
    if src.is_dir() and ((src / "zarr.json").exists() or (src / ".zgroup").exists()):
        group = zarr.open_group(src, mode="r")
        if group.attrs.get("format") == "remix-episodes":
            raise SourceError(f"{src} is already a Re-Mix episode store; use it directly (nothing to import)")
        if "meta" in group and "episode_ends" in group["meta"]:
            return "replay_buffer"
    versions = [p for p in src.iterdir() if (p / "dataset_info.json").exists()] if src.is_dir() else []
    hint = f" (RLDS versions inside: {', '.join(p.name for p in versions)}; point SRC at one)" if versions else ""
    raise SourceError(
        f"{src}: cannot tell the dataset format{hint}; pass format=rlds|lerobot|robomimic|replay_buffer "
        "or point SRC at <name>/<version>/, a LeRobot root, a robomimic .hdf5 or a replay-buffer .zarr"
    )


def open_reader(src: str | Path, options: ImportOptions) -> SourceReader:
    src = Path(src)
    kind = detect_format(src) if options.format == "auto" else options.format
    if kind == "rlds":
        from remix.data.importers.rlds import RLDSReader

        return RLDSReader(src, options.split)
    if kind == "robomimic":
        from remix.data.importers.robomimic import RobomimicReader

        return RobomimicReader(src, options.split)
    if kind == "replay_buffer":
        from remix.data.importers.replay_buffer import ReplayBufferReader

        return ReplayBufferReader(src)
    from remix.data.importers.lerobot import LeRobotReader

    return LeRobotReader(src, options.split, set(options.cameras.values()))


def needed_keys(options: ImportOptions) -> set[str]:
    keys = set(options.cameras.values()) | set(options.action) | set(options.state)
    for key in (options.language, options.success):
        if key:
            keys.add(key)
    for rule in [options.domain, *options.fields.values()]:
        if rule.from_ in ("field", "column", "file_path"):
            keys.add(rule.key or "episode_metadata/file_path")
    return keys


def check_mapping(reader: SourceReader, options: ImportOptions) -> None:
    """Refuse a mapping that names keys the source lacks, before any episode is read."""
    if not options.action:
        raise SourceError(f"{reader.path}: no action key given; set action=<key> (step keys: {', '.join(reader.step_keys)})")
    available = set(reader.step_keys) | set(reader.meta_keys)
    for what, keys in (("camera", options.cameras.values()), ("action", options.action), ("state", options.state)):
        for key in keys:
            if key not in reader.step_keys:
                raise SourceError(
                    f"{reader.path}: {what} key {key!r} is not a per-step key of this source (every episode); "
                    f"it has {', '.join(reader.step_keys)}; fix the {what} mapping"
                )
    for key in needed_keys(options) - available:
        raise SourceError(f"{reader.path}: key {key!r} is not in this source; it has {', '.join(sorted(available))}")
    check_keys = getattr(reader, "check_keys", None)  # readers that list features they cannot decode
    if check_keys is not None:
        check_keys(needed_keys(options))


# ----------------------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def _init_worker(src: str, options: ImportOptions, sizes: dict) -> None:
    _WORKER.update(reader=open_reader(src, options), options=options, sizes=sizes, keys=needed_keys(options))


def _work(ref: EpisodeRef) -> tuple[EpisodeRef, Any]:
    try:
        episode = _WORKER["reader"].read(ref, _WORKER["keys"])
        return ref, build_episode(episode, _WORKER["options"], _WORKER["sizes"])
    except SkipEpisode as skip:
        return ref, skip
    except SourceError as error:
        return ref, error


def _built(reader: SourceReader, src: Path, refs: list[EpisodeRef], options: ImportOptions, sizes: dict) -> Iterator[tuple[EpisodeRef, Any]]:
    if options.workers == 1 or len(refs) < 2:
        _WORKER.update(reader=reader, options=options, sizes=sizes, keys=needed_keys(options))
        yield from map(_work, refs)
        return
    context = multiprocessing.get_context("spawn")  # zarr's event-loop thread makes fork unsafe
    with context.Pool(options.workers, _init_worker, (str(src), options, sizes)) as pool:
        yield from pool.imap(_work, refs, chunksize=1)


# ----------------------------------------------------------------------------- the import
def camera_sizes(reader: SourceReader, ref: EpisodeRef, options: ImportOptions) -> dict[str, tuple[int, int]]:
    if options.image_size is not None:
        return {camera: tuple(options.image_size) for camera in options.cameras}
    episode = reader.read(ref, set(options.cameras.values()))
    sizes = {}
    for camera, key in options.cameras.items():
        frame = episode.steps[key][0]
        sizes[camera] = resize_image(to_rgb(frame), None).shape[:2]
    return sizes


def _check_resume(store: EpisodeStore, sizes: dict, fps: float) -> None:
    if store.cameras != {k: tuple(v) for k, v in sizes.items()} or store.fps != fps:
        raise StoreError(
            f"{store.path} holds cameras {store.cameras} at {store.fps} fps, this import makes {sizes} at {fps}; "
            "use another out= or overwrite=true"
        )


def _create_store(out: Path, options: ImportOptions, reader: SourceReader, arrays: dict, sizes: dict, fps: float) -> EpisodeStore:
    """The new store, shaped by the first episode built (the old one is removed only now, with overwrite)."""
    action_dim = arrays["action"].shape[1]
    action_names = options.action_names or default_action_names(action_dim)
    if len(action_names) != action_dim:
        raise SourceError(f"{reader.path}: action_names has {len(action_names)} names for {action_dim} action dims; fix action_names=")
    state = arrays.get("state")
    extra = {"shard_frames": options.shard_frames} if options.shard_frames else {}
    return EpisodeStore.create(
        out,
        fps=fps,
        robot=options.robot,
        action_names=action_names,
        gripper_dims=options.gripper_dims if options.gripper_dims is not None else default_gripper_dims(action_dim),
        cameras=sizes,
        state_names=[f"s{i}" for i in range(state.shape[1])] if state is not None else None,
        overwrite=options.overwrite,
        **extra,
    )


def _done(store: EpisodeStore) -> set[tuple[str, int]]:
    if "source" not in store.fields or "source_index" not in store.fields:
        return set()
    return {(str(s), int(i)) for s, i in zip(store.field("source"), store.field("source_index"))}


def import_dataset(src: str | Path, out: str | Path, options: ImportOptions, progress: bool = True) -> ImportResult:
    """Import `src` into the store `out` (created, or resumed when it exists), returning what was done."""
    src, out = Path(src), Path(out)
    reader = open_reader(src, options)
    source_fps = options.fps or reader.fps
    if not source_fps:
        raise SourceError(f"{src}: the source records no frame rate ({reader.format}); pass fps=<Hz> (Bridge: 5, DROID: 15)")
    fps = source_fps / options.stride  # the store keeps every stride-th step, so its steps are stride times apart
    check_mapping(reader, options)
    refs = reader.refs()
    if options.max_episodes is not None:
        refs = refs[: options.max_episodes]
    if not refs:
        raise SourceError(f"{src}: no episodes to import (split={options.split}); check the split and the source")
    result = ImportResult(out)
    started = time.perf_counter()
    sizes = camera_sizes(reader, refs[0], options)
    store: EpisodeStore | None = None
    done: set[tuple[str, int]] = set()
    if out.exists() and not options.overwrite:
        store = EpisodeStore.open(out, mode="a")
        _check_resume(store, sizes, fps)
        done = _done(store)
    todo = [ref for ref in refs if (ref.source, ref.index) not in done]
    result.already = len(refs) - len(todo)
    try:
        for _ref, built in _built(reader, src, todo, options, sizes):
            if isinstance(built, SkipEpisode):
                result.skipped[built.reason] += 1
                continue
            if isinstance(built, SourceError):
                raise built
            arrays, fields = built
            if store is None:
                store = _create_store(out, options, reader, arrays, sizes, fps)
            store.add_episode(arrays, **fields)
            result.added += 1
            result.steps += len(arrays["action"])
            if progress and result.added % 100 == 0:
                print(f"  {result.added}/{len(todo)} episodes", file=sys.stderr, flush=True)
    finally:
        if store is not None:
            store.close()  # releases the writer lock
    result.seconds = time.perf_counter() - started
    return result
