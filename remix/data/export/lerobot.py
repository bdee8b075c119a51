"""Write an episode store as a LeRobot v3.0 dataset, so a `remix-subset` can feed LeRobot's trainers.

Layout written (lerobot's CODEBASE_VERSION v3.0): meta/info.json, meta/stats.json, meta/tasks.parquet (task
strings as the pandas index, `task_index` column), meta/episodes/chunk-000/file-000.parquet (episode_index,
tasks, length, data/* and videos/<key>/* locations, dataset_from_index/to_index), data/chunk-000/file-000.parquet
(action, observation.state, timestamp, frame_index, episode_index, index, task_index) and one mp4 per camera,
videos/observation.images.<camera>/chunk-000/file-000.mp4 (AV1 by default, as lerobot records) or, with
video=false, lossless PNG image columns. Actions and states are copied as float32, value for value; the
store's per-episode fields become `remix/<field>` columns of the episodes parquet (import: domain.key=remix/domain).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from remix.common.errors import ConfigError
from remix.data.store import EpisodeStore

DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
_CHUNK = {"chunk_index": 0, "file_index": 0}
FIELD_PREFIX = "remix/"  # episode-metadata columns holding the store's per-episode fields


def _pa() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ConfigError("exporting to LeRobot needs pyarrow and av: pip install 'remix-stack[import]'") from None
    return pa, pq


def camera_key(camera: str) -> str:
    return f"observation.images.{camera}"


def _stats(values: np.ndarray) -> dict[str, list]:
    values = values.astype(np.float64)
    return {"min": values.min(0).tolist(), "max": values.max(0).tolist(), "mean": values.mean(0).tolist(),
            "std": values.std(0).tolist(), "count": [len(values)]}


def _image_stats(store: EpisodeStore, key: str) -> dict[str, list]:
    array = store.array(key)
    picks = np.linspace(0, store.num_steps - 1, min(store.num_steps, 100)).astype(int)
    pixels = np.stack([array[int(i)] for i in picks]).reshape(-1, 3).astype(np.float64) / 255.0
    shape = lambda v: [[[float(c)]] for c in v]  # noqa: E731  lerobot keeps image stats as (3, 1, 1)
    return {"min": shape(pixels.min(0)), "max": shape(pixels.max(0)), "mean": shape(pixels.mean(0)),
            "std": shape(pixels.std(0)), "count": [len(picks)]}


def _encode_video(store: EpisodeStore, key: str, path: Path, codec: str) -> None:
    import av

    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its banner otherwise
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = store.array(key).shape[1:3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=int(round(store.fps)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": "2", "crf": "30"} if codec == "libsvtav1" else {"g": "2", "crf": "18"}
        for start in range(0, store.num_steps, 256):
            for frame in store.array(key)[start : min(start + 256, store.num_steps)]:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _tasks_table(pa: Any, tasks: list[str]) -> Any:
    """tasks.parquet as pandas writes a frame indexed by task (lerobot reads it with pandas)."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"], "column_indexes": [], "pandas_version": "2.2.3", "creator": {"library": "pyarrow"},
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
                    {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None}],
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def export_lerobot(src: str | Path, out: str | Path, overwrite: bool = False, video: bool = True, codec: str = "libsvtav1") -> str:
    """Write the store `src` as a LeRobot v3.0 dataset in `out`; returns a one-line report."""
    pa, pq = _pa()
    store, out = EpisodeStore.open(src), Path(out)
    if out.exists():
        if not overwrite:
            raise ConfigError(f"{out} already exists; choose another out= or pass overwrite=true")
        shutil.rmtree(out)
    if store.num_episodes == 0:
        raise ConfigError(f"{src} has no episodes to export")
    lengths = store.episode_lengths
    fields = set(store.fields)
    task_of = [str(t) for t in store.field("task")] if "task" in fields else [""] * store.num_episodes
    tasks = sorted(set(task_of))
    episode_index = np.repeat(np.arange(store.num_episodes), lengths)
    frame_index = np.concatenate([np.arange(n) for n in lengths])
    columns: dict[str, Any] = {}
    features: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    for key, name, names in (("action", "action", store.action_names), ("state", "observation.state", store.state_names)):
        if key not in store.keys:
            continue
        values = store.array(key)[: store.num_steps]
        columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1), pa.float32()), values.shape[1])
        features[name] = {"dtype": "float32", "shape": [values.shape[1]], "names": list(names or [])}
        stats[name] = _stats(values)
    for camera, (height, width) in store.cameras.items():
        key, vkey = f"images/{camera}", camera_key(camera)
        info = {"dtype": "video" if video else "image", "shape": [height, width, 3], "names": ["height", "width", "channels"]}
        if video:
            _encode_video(store, key, out / VIDEO_PATH.format(video_key=vkey, **_CHUNK), codec)
            info["info"] = {"video.height": height, "video.width": width, "video.codec": "av1" if codec == "libsvtav1" else "h264",
                            "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": store.fps,
                            "video.channels": 3, "has_audio": False}
        else:
            frames = store.array(key)
            png = [cv2.imencode(".png", cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))[1].tobytes() for i in range(store.num_steps)]
            columns[vkey] = pa.StructArray.from_arrays([pa.array(png, pa.binary()), pa.array([None] * len(png), pa.string())], ["bytes", "path"])
        features[vkey] = info
        stats[vkey] = _image_stats(store, key)
    task_index = np.array([tasks.index(t) for t in task_of])[episode_index]
    scalars = {"timestamp": (frame_index / store.fps).astype(np.float32), "frame_index": frame_index, "episode_index": episode_index,
               "index": np.arange(store.num_steps), "task_index": task_index}
    for name, values in scalars.items():
        columns[name] = pa.array(values)
        features[name] = {"dtype": "float32" if name == "timestamp" else "int64", "shape": [1], "names": None}
    data_file = out / DATA_PATH.format(**_CHUNK)
    data_file.parent.mkdir(parents=True)
    pq.write_table(pa.table(columns), data_file)
    _write_meta(pa, pq, store, out, features, stats, tasks, task_of, video)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return f"exported {store.num_episodes} episodes ({store.num_steps} frames, {len(store.cameras)} cameras) to {out} as LeRobot v3.0 ({size / 1e6:.1f} MB)"


def _write_meta(pa: Any, pq: Any, store: EpisodeStore, out: Path, features: dict, stats: dict, tasks: list[str], task_of: list[str], video: bool) -> None:
    ends, lengths = store.episode_ends, store.episode_lengths
    starts = ends - lengths
    episodes: dict[str, Any] = {
        "episode_index": pa.array(range(store.num_episodes), pa.int64()),
        "tasks": pa.array([[t] for t in task_of], pa.list_(pa.string())),
        "length": pa.array(lengths, pa.int64()),
        "data/chunk_index": pa.array([0] * store.num_episodes, pa.int64()),
        "data/file_index": pa.array([0] * store.num_episodes, pa.int64()),
        "dataset_from_index": pa.array(starts, pa.int64()),
        "dataset_to_index": pa.array(ends, pa.int64()),
    }
    if video:
        for camera in store.cameras:
            vkey = camera_key(camera)
            episodes[f"videos/{vkey}/chunk_index"] = pa.array([0] * store.num_episodes, pa.int64())
            episodes[f"videos/{vkey}/file_index"] = pa.array([0] * store.num_episodes, pa.int64())
            episodes[f"videos/{vkey}/from_timestamp"] = pa.array(starts / store.fps, pa.float64())
            episodes[f"videos/{vkey}/to_timestamp"] = pa.array(ends / store.fps, pa.float64())
    for name in store.fields:  # the store's per-episode fields (domain, scene, ...), read back as meta keys
        values = store.field(name)
        episodes[f"{FIELD_PREFIX}{name}"] = pa.array([v.item() if hasattr(v, "item") else v for v in values])
    episodes["meta/episodes/chunk_index"] = pa.array([0] * store.num_episodes, pa.int64())
    episodes["meta/episodes/file_index"] = pa.array([0] * store.num_episodes, pa.int64())
    (out / EPISODES_PATH).parent.mkdir(parents=True)
    pq.write_table(pa.table(episodes), out / EPISODES_PATH)
    pq.write_table(_tasks_table(pa, tasks), out / "meta" / "tasks.parquet")
    (out / "meta" / "stats.json").write_text(json.dumps(stats, indent=1))
    info = {
        "codebase_version": "v3.0", "robot_type": store.robot, "total_episodes": store.num_episodes,
        "total_frames": store.num_steps, "total_tasks": len(tasks), "chunks_size": 1000,
        "data_files_size_in_mb": 100, "video_files_size_in_mb": 500, "fps": int(round(store.fps)),
        "splits": {"train": f"0:{store.num_episodes}"}, "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if video and store.cameras else None, "features": features,
    }
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=4))
