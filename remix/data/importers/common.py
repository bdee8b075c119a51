"""What every importer shares: the error type, the episode a reader hands over, image decoding and resizing.

A reader turns one source episode into a `SourceEpisode`: per-step arrays under the source's own key
names (`steps/action`, `obs/agentview_image`, `observation.state`, ...) and per-episode values. Camera
frames may stay encoded (`EncodedFrames`) until the converter decodes the few it keeps, so a reader never
decodes a camera nobody asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from remix.common.errors import RemixError

RESIZE_MODES = ("stretch", "crop", "pad")


class SourceError(RemixError):
    """A source dataset cannot be read or does not match the import options (one line: file, episode, fix)."""


@dataclass(frozen=True)
class EpisodeRef:
    """Where one source episode lives: enough for any process to read it again."""

    source: str        # stable name of the source collection, e.g. "bridge_dataset/1.0.0/train"
    index: int         # position in that source (file order), the resume key together with `source`
    location: str      # the file to name in error messages
    handle: Any = None  # reader-specific (byte offset, demo name, row range, ...)
    split: str = ""


class EncodedFrames(Sequence):
    """Compressed camera frames (JPEG/PNG bytes) decoded on demand, one per step."""

    def __init__(self, data: Sequence[bytes], where: str) -> None:
        self.data = list(data)
        self.where = where

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        return decode_image(self.data[index], f"{self.where}, step {index}")


@dataclass
class SourceEpisode:
    """One episode as read from a source, before mapping to the store's keys."""

    ref: EpisodeRef
    length: int
    steps: dict[str, Any] = field(default_factory=dict)   # key -> (T, ...) array, EncodedFrames or list
    meta: dict[str, Any] = field(default_factory=dict)    # key -> per-episode value

    @property
    def where(self) -> str:
        return f"{self.ref.location}: episode {self.ref.index} of {self.ref.source}"


def decode_image(data: bytes, where: str) -> np.ndarray:
    """JPEG/PNG bytes as uint8 RGB (H, W, 3); libjpeg's accurate integer DCT (TF's INTEGER_ACCURATE)."""
    if len(data) == 0:
        raise SourceError(f"{where}: empty image bytes; drop the camera or the episode (filters.require_cameras=true)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SourceError(f"{where}: image bytes are not a decodable JPEG/PNG; the file is corrupt, download it again")
    return to_rgb(image, bgr=True)


def to_rgb(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Grey, RGB(A) or BGR(A) uint8 frames as RGB (H, W, 3)."""
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8) if image.dtype.kind == "f" else (image >> 8).astype(np.uint8)
    if image.ndim == 2 or image.shape[-1] == 1:
        return np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=-1)
    if bgr:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[-1] == 4 else cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image[..., :3])


def resize_image(image: np.ndarray, size: tuple[int, int] | None, mode: str = "stretch") -> np.ndarray:
    """Resize one RGB frame to (H, W): stretch, centre-crop to the aspect ratio first, or pad (letterbox)."""
    if size is None or image.shape[:2] == tuple(size):
        return image
    height, width = size
    if mode == "crop":
        h, w = image.shape[:2]
        scale = min(h / height, w / width)
        ch, cw = round(height * scale), round(width * scale)
        top, left = (h - ch) // 2, (w - cw) // 2
        image = image[top : top + ch, left : left + cw]
    elif mode == "pad":
        h, w = image.shape[:2]
        scale = min(height / h, width / w)
        inner = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=_interp(scale))
        out = np.zeros((height, width, 3), np.uint8)
        top, left = (height - inner.shape[0]) // 2, (width - inner.shape[1]) // 2
        out[top : top + inner.shape[0], left : left + inner.shape[1]] = inner
        return out
    scale = min(height / image.shape[0], width / image.shape[1])
    return cv2.resize(image, (width, height), interpolation=_interp(scale))


def _interp(scale: float) -> int:
    # area averaging only where it matters (strong downscaling); bilinear is ~10x faster for 256 -> 224
    return cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR


def as_text(value: Any) -> str:
    """A per-episode or per-step text value (bytes, numpy scalar, 0-d array) as str."""
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)
