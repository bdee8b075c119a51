"""Trial videos: camera frames at the control rate, written with OpenCV (mp4v in an .mp4).

A video is written under a `.partial.mp4` name and renamed into place only when the trial ends, so a
crash never leaves a truncated file under a name the trial log could point at. Several cameras are
tiled side by side into one video (each scaled to the first camera's height).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from remix.common.errors import RemixError

PARTIAL_SUFFIX = ".partial.mp4"


def tile_frames(images: Mapping[str, np.ndarray], cameras: tuple[str, ...] | None = None) -> np.ndarray:
    """Put the named cameras' RGB frames side by side (all scaled to the first one's height)."""
    names = cameras if cameras else tuple(images)
    if not names:
        raise ValueError("observation has no camera images to record")
    missing = [n for n in names if n not in images]
    if missing:
        raise RemixError(f"camera(s) {missing} not in the robot's observation (has {sorted(images)}); fix video.cameras")
    frames = [np.asarray(images[n]) for n in names]
    height = frames[0].shape[0]
    scaled = []
    for frame in frames:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"camera frames must be uint8 HxWx3, got {frame.dtype} {frame.shape}")
        if frame.shape[0] != height:
            width = round(frame.shape[1] * height / frame.shape[0])
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        scaled.append(frame)
    return np.concatenate(scaled, axis=1) if len(scaled) > 1 else scaled[0]


class TrialVideo:
    """Write RGB frames of one size to `path` at `fps`; `finish()` publishes it, `discard()` drops it."""

    def __init__(self, path: str | Path, fps: float) -> None:
        if not fps > 0:
            raise ValueError(f"video fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.partial_path = self.path.with_name(self.path.stem + PARTIAL_SUFFIX)
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, frame_rgb: np.ndarray) -> None:
        frame = np.asarray(frame_rgb)
        height, width = frame.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(self.partial_path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not writer.isOpened():
                raise RemixError(f"cannot open a video writer at {self.partial_path}; check the folder is writable")
            self._writer, self._size = writer, (width, height)
        elif (width, height) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def finish(self) -> Path | None:
        """Close the file and move it to its final name; None if no frame was written."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self.partial_path, self.path)
        return self.path

    def discard(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self.partial_path.unlink(missing_ok=True)


def remove_partial_videos(folder: Path) -> int:
    """Delete videos left half-written by a crashed run under `folder`; returns how many."""
    if not folder.exists():
        return 0
    removed = 0
    for path in folder.rglob(f"*{PARTIAL_SUFFIX}"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


def read_video_frames(path: str | Path) -> list[np.ndarray]:
    """Decode a video back to RGB frames (tests and tools)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise RemixError(f"cannot read video {path}; the file is missing or not a video")
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames
