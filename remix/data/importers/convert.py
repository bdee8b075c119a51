"""Map one `SourceEpisode` to the store's arrays (action, state, images/<camera>) and per-episode fields."""

from __future__ import annotations

from typing import Any

import numpy as np

from remix.data.importers.common import (
    EncodedFrames,
    SourceEpisode,
    SourceError,
    as_text,
    resize_image,
    to_rgb,
)
from remix.data.importers.fields import TASK, SkipEpisode, field_value
from remix.data.importers.options import ImportOptions

SUCCESS = "success"  # SourceEpisode.meta key a reader fills when its format knows success


def _steps(episode: SourceEpisode, key: str, what: str) -> Any:
    if key not in episode.steps:
        raise SourceError(
            f"{episode.where}: {what} key {key!r} is not in the source; it has {sorted(episode.steps)} (fix the {what} mapping)"
        )
    return episode.steps[key]


def _concat(episode: SourceEpisode, keys: list[str], what: str) -> np.ndarray:
    parts = []
    for key in keys:
        value = _steps(episode, key, what)
        if isinstance(value, (list, EncodedFrames)) or value.dtype.kind not in "biuf":
            raise SourceError(f"{episode.where}: {what} key {key!r} is not numeric per step; pick a numeric key")
        value = np.asarray(value, dtype=np.float64)
        parts.append(value.reshape(len(value), -1))
    lengths = {len(p) for p in parts}
    if lengths != {episode.length}:
        raise SourceError(f"{episode.where}: {what} keys {keys} have {sorted(lengths)} steps, the episode {episode.length}; the source is inconsistent")
    return np.concatenate(parts, axis=1)


def stride_actions(action: np.ndarray, stride: int, kind: str, gripper_dims: list[int]) -> np.ndarray:
    """Actions of every `stride`-th step: delta dims summed over the skipped steps, absolute dims (and grippers) the last."""
    if stride == 1:
        return action
    starts = np.arange(0, len(action), stride)
    if kind == "absolute":
        return action[np.minimum(starts + stride, len(action)) - 1]
    out = np.add.reduceat(action, starts, axis=0)
    last = action[np.minimum(starts + stride, len(action)) - 1]
    out[:, gripper_dims] = last[:, gripper_dims]
    return out


def is_blank(frames: Any, length: int) -> bool:
    """True when a camera holds no picture: its first, middle and last frames are each one flat colour."""
    for t in sorted({0, length // 2, length - 1}):
        frame = frames[t]
        if frame.size and int(frame.max()) != int(frame.min()):
            return False
    return True


def camera_frames(episode: SourceEpisode, key: str, steps: np.ndarray, size: tuple[int, int] | None, mode: str) -> np.ndarray:
    frames = _steps(episode, key, "camera")
    if len(frames) != episode.length:
        raise SourceError(f"{episode.where}: camera key {key!r} has {len(frames)} frames for {episode.length} steps; the source is inconsistent")
    out = []
    for t in steps:
        frame = frames[int(t)]
        if not isinstance(frames, EncodedFrames):
            frame = to_rgb(np.asarray(frame))
        out.append(resize_image(frame, size, mode))
    return np.stack(out)


def task_of(episode: SourceEpisode, options: ImportOptions) -> str:
    if options.language:
        value = episode.steps.get(options.language, episode.meta.get(options.language))
        if value is None:
            raise SourceError(f"{episode.where}: language key {options.language!r} is not in the source; fix language=")
        if isinstance(value, (np.ndarray, list)) and np.ndim(value) and len(value):
            texts = [as_text(v) for v in value]
            return next((t for t in texts if t.strip()), "")
        return as_text(value)
    return as_text(episode.meta.get(TASK, ""))


def success_of(episode: SourceEpisode, options: ImportOptions) -> bool | None:
    if options.success:
        value = episode.meta.get(options.success, episode.steps.get(options.success))
        if value is None:
            raise SourceError(f"{episode.where}: success key {options.success!r} is not in the source; fix success=")
        flat = np.asarray(value).reshape(-1)
        return bool(flat[-1] > 0) if flat.size else None
    value = episode.meta.get(SUCCESS)
    return None if value is None else bool(value)


def build_episode(
    episode: SourceEpisode, options: ImportOptions, sizes: dict[str, tuple[int, int] | None]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and fields to add to the store; raises SkipEpisode when a filter drops the episode."""
    if episode.length < max(1, options.filters.min_length):
        raise SkipEpisode(f"shorter than {options.filters.min_length} steps")
    success = success_of(episode, options)
    if options.filters.success_only:
        if success is None:
            raise SourceError(f"{episode.where}: filters.success_only needs a success signal; set success=<key> or drop the filter")
        if not success:
            raise SkipEpisode("unsuccessful")
    task = task_of(episode, options)
    fields: dict[str, Any] = {
        "source": episode.ref.source,
        "source_index": int(episode.ref.index),
        "split": episode.ref.split,
        "task": task,
    }
    for name, rule in options.fields.items():
        fields[name] = field_value(rule, episode, task, name)
    fields["domain"] = field_value(options.domain, episode, task, "domain")
    if success is not None:
        fields["success"] = success
    if options.filters.require_cameras:
        for camera, key in options.cameras.items():
            frames = _steps(episode, key, "camera")
            if len(frames) == 0 or is_blank(frames, episode.length):
                raise SkipEpisode(f"camera {camera} blank")
    steps = np.arange(0, episode.length, options.stride)
    action = _concat(episode, options.action, "action")
    gripper = options.gripper_dims if options.gripper_dims is not None else default_gripper_dims(action.shape[1])
    arrays: dict[str, np.ndarray] = {"action": stride_actions(action, options.stride, options.action_kind, gripper).astype(np.float32)}
    if options.state:
        arrays["state"] = _concat(episode, options.state, "state")[steps].astype(np.float32)
    for camera, key in options.cameras.items():
        arrays[f"images/{camera}"] = camera_frames(episode, key, steps, sizes.get(camera), options.resize)
    bad = np.argwhere(~np.isfinite(arrays["action"]))
    if len(bad):
        raise SourceError(f"{episode.where}: action has a NaN/inf at step {bad[0][0]}; clean the source or exclude the episode (max_episodes / split)")
    return arrays, fields


def default_gripper_dims(action_dim: int) -> list[int]:
    return [6] if action_dim == 7 else []


def default_action_names(action_dim: int) -> list[str]:
    from remix.data.store import DEFAULT_ACTION_NAMES

    return list(DEFAULT_ACTION_NAMES) if action_dim == len(DEFAULT_ACTION_NAMES) else [f"a{i}" for i in range(action_dim)]
