"""LeRobot datasets (codebase v2.0, v2.1 and v3.0) read with pyarrow and PyAV, without lerobot itself.

v2.x: one parquet per episode (`data_path` template with episode_chunk/episode_index), one mp4 per
episode and camera (`video_path`), `meta/episodes.jsonl` and `meta/tasks.jsonl`.
v3.0: episodes concatenated in `data/chunk-XXX/file-XXX.parquet` and `videos/<key>/chunk-XXX/file-XXX.mp4`;
`meta/episodes/chunk-XXX/file-XXX.parquet` says where each episode lives (data/chunk_index, data/file_index,
videos/<key>/chunk_index, file_index, from_timestamp, to_timestamp); tasks in `meta/tasks.parquet`.
Video frames are picked by timestamp (the episode's `timestamp` column, plus `from_timestamp` in v3.0), so
decoding is frame-accurate whatever the keyframe spacing; image features are parquet structs of PNG bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from remix.data.importers.common import EncodedFrames, EpisodeRef, SourceEpisode, SourceError
from remix.data.importers.fields import TASK

_STANDARD = {"episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index"}
_LOCATORS = ("data/", "videos/", "meta/", "stats/")


def _pq() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SourceError("reading LeRobot datasets needs pyarrow and av: pip install 'remix-stack[import]'") from None
    return pq


def column_values(column: Any) -> np.ndarray:
    """A parquet column of numbers or fixed-length lists as a (T,) or (T, D) numpy array."""
    import pyarrow as pa

    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        flat = column_values(column.flatten())
        return flat.reshape(len(column), -1) if len(column) else flat.reshape(0, 0)
    return column.to_numpy(zero_copy_only=False)


def decode_video(path: Path, times: np.ndarray, fps: float, where: str) -> list[np.ndarray]:
    """The RGB frames of `path` at `times` (seconds), each the frame within 0.4/fps of its timestamp."""
    try:
        import av
    except ImportError:
        raise SourceError("decoding LeRobot videos needs PyAV: pip install 'remix-stack[import]'") from None
    if not path.exists():
        raise SourceError(f"{where}: video {path} is missing; download the dataset's videos again")
    tolerance = 0.4 / fps
    frames: list[np.ndarray] = []
    last = -1.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if times[0] > tolerance:
            container.seek(int(max(0.0, times[0] - tolerance) / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            last = float(frame.time)
            while len(frames) < len(times) and times[len(frames)] < last - tolerance:
                raise SourceError(
                    f"{where}: {path.name} has no frame at {times[len(frames)]:.3f} s (next frame at {last:.3f} s); "
                    "the video does not match the parquet timestamps, re-encode or download it again"
                )
            if len(frames) < len(times) and abs(times[len(frames)] - last) <= tolerance:
                frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == len(times):
                return frames
    raise SourceError(
        f"{where}: {path.name} ends at {last:.3f} s but the parquet needs frames up to {times[-1]:.3f} s "
        f"({len(frames)} of {len(times)} found); the mp4 is shorter than its parquet, download it again or drop the episode"
    )


class LeRobotReader:
    format = "lerobot"

    def __init__(self, path: str | Path, split: str | None = None, cameras: set[str] | None = None) -> None:
        self.path = Path(path)
        info_path = self.path / "meta" / "info.json"
        try:
            self.info = json.loads(info_path.read_text())
        except (OSError, ValueError) as error:
            raise SourceError(f"{info_path}: cannot read LeRobot info ({error}); point SRC at the dataset root") from None
        self.version = str(self.info.get("codebase_version", "v2.1"))
        if self.version not in ("v2.0", "v2.1", "v3.0"):
            raise SourceError(f"{info_path}: LeRobot codebase {self.version} is not supported; convert it to v3.0 or v2.1")
        self.fps: float | None = float(self.info["fps"])
        self.features: dict[str, dict] = self.info.get("features", {})
        self.episodes = self._episodes()
        self._extra = sorted({k for e in self.episodes for k in e if k not in _STANDARD and not k.startswith(_LOCATORS)})
        self.tasks = self._tasks()
        self.split = split
        if split is not None and split not in self.info.get("splits", {}):
            raise SourceError(f"{info_path}: no split {split!r}; it has {sorted(self.info.get('splits', {}))}")

    @property
    def step_keys(self) -> list[str]:
        return sorted(self.features)

    @property
    def meta_keys(self) -> list[str]:
        """The task, plus any per-episode metadata beyond lerobot's own (e.g. remix/domain from an export)."""
        return [TASK, *self._extra]

    def _episodes(self) -> list[dict[str, Any]]:
        meta = self.path / "meta"
        if self.version != "v3.0":
            lines = (meta / "episodes.jsonl").read_text().splitlines()
            return sorted((json.loads(line) for line in lines if line.strip()), key=lambda e: e["episode_index"])
        files = sorted((meta / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise SourceError(f"{meta / 'episodes'}: no episode metadata parquet files; the dataset is incomplete")
        rows: list[dict[str, Any]] = []
        for file in files:
            table = _pq().read_table(file, columns=None)
            keep = [c for c in table.column_names if not c.startswith("stats/")]
            rows.extend(table.select(keep).to_pylist())
        return sorted(rows, key=lambda e: e["episode_index"])

    def _tasks(self) -> dict[int, str]:
        meta = self.path / "meta"
        if self.version != "v3.0":
            path = meta / "tasks.jsonl"
            if not path.exists():
                return {}
            return {int(t["task_index"]): t["task"] for t in map(json.loads, path.read_text().splitlines()) if t}
        table = _pq().read_table(meta / "tasks.parquet").to_pydict()
        names = table.get("task") or table.get("__index_level_0__") or []
        return {int(i): str(n) for i, n in zip(table["task_index"], names)}

    def refs(self) -> list[EpisodeRef]:
        wanted = None
        if self.split is not None:
            start, stop = (int(v) for v in str(self.info["splits"][self.split]).split(":"))
            wanted = range(start, stop)
        name = self.info.get("repo_id") or self.path.name
        return [
            EpisodeRef(str(name), int(e["episode_index"]), str(self._data_file(e)), e, self.split or "")
            for e in self.episodes
            if wanted is None or int(e["episode_index"]) in wanted
        ]

    def _chunk(self, index: int) -> int:
        return index // int(self.info.get("chunks_size", 1000))

    def _data_file(self, episode: dict[str, Any]) -> Path:
        index = int(episode["episode_index"])
        if self.version != "v3.0":
            return self.path / self.info["data_path"].format(episode_chunk=self._chunk(index), episode_index=index)
        return self.path / self.info["data_path"].format(chunk_index=episode["data/chunk_index"], file_index=episode["data/file_index"])

    def _video_file(self, episode: dict[str, Any], key: str) -> Path:
        index = int(episode["episode_index"])
        if self.version != "v3.0":
            return self.path / self.info["video_path"].format(episode_chunk=self._chunk(index), video_key=key, episode_index=index)
        return self.path / self.info["video_path"].format(
            video_key=key, chunk_index=episode[f"videos/{key}/chunk_index"], file_index=episode[f"videos/{key}/file_index"]
        )

    def read(self, ref: EpisodeRef, keys: set[str] | None = None) -> SourceEpisode:
        meta = ref.handle
        where = f"{ref.location}: episode {ref.index}"
        path = Path(ref.location)
        try:
            table = _pq().read_table(path)
        except Exception as error:  # pyarrow raises several types for missing or damaged files
            raise SourceError(f"{where}: cannot read the parquet file ({error.__class__.__name__}); download it again") from None
        if self.version == "v3.0":
            import pyarrow.compute as pc

            table = table.filter(pc.equal(table["episode_index"], ref.index))
        length = table.num_rows
        if length != int(meta.get("length", length)):
            raise SourceError(f"{where}: parquet has {length} frames but the episode metadata says {meta['length']}; the dataset is inconsistent")
        episode = SourceEpisode(ref, length)
        for key in keys if keys is not None else self.step_keys:
            feature = self.features.get(key)
            if feature is None:
                continue
            if feature.get("dtype") == "video":
                times = column_values(table["timestamp"]).astype(np.float64)
                if self.version == "v3.0":
                    times = times + float(meta[f"videos/{key}/from_timestamp"])
                episode.steps[key] = np.stack(decode_video(self._video_file(meta, key), times, self.fps or 1.0, where))
            elif feature.get("dtype") == "image":
                episode.steps[key] = EncodedFrames([cell["bytes"] for cell in table[key].to_pylist()], f"{where}, {key}")
            elif key in table.column_names:
                episode.steps[key] = column_values(table[key])
        tasks = meta.get("tasks") or []
        if not tasks and "task_index" in table.column_names and length:
            tasks = [self.tasks.get(int(column_values(table["task_index"])[0]), "")]
        episode.meta[TASK] = str(tasks[0]) if tasks else ""
        for key in self._extra:
            episode.meta[key] = meta.get(key)
        return episode
