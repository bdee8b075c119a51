"""diffusion_policy replay buffers: a zarr (format 2) group with data/<key> concatenated over time and
meta/episode_ends, read through zarr v3. There are no per-episode fields and no frame rate (pass fps=).
Real-robot buffers may compress images with imagecodecs' Jpeg2k: installing imagecodecs registers it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from remix.data.importers.common import EpisodeRef, SourceEpisode, SourceError


def _register_codecs() -> None:
    try:  # optional: real-robot buffers use imagecodecs' Jpeg2k codec
        from imagecodecs.numcodecs import register_codecs
    except ImportError:
        return
    register_codecs()


class ReplayBufferReader:
    format = "replay_buffer"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _register_codecs()
        try:
            self.root = zarr.open_group(self.path, mode="r")
            self.ends = np.asarray(self.root["meta/episode_ends"][:], dtype=np.int64)
        except Exception as error:  # zarr raises several types for a non-zarr or broken folder
            raise SourceError(f"{self.path}: not a replay buffer with meta/episode_ends ({error.__class__.__name__}); check the path") from None
        self.fps: float | None = None
        self._keys = sorted(self.root["data"].array_keys())

    @property
    def step_keys(self) -> list[str]:
        return self._keys

    @property
    def meta_keys(self) -> list[str]:
        return []

    def refs(self) -> list[EpisodeRef]:
        starts = np.concatenate([[0], self.ends[:-1]])
        return [EpisodeRef(self.path.name, i, str(self.path), (int(a), int(b))) for i, (a, b) in enumerate(zip(starts, self.ends))]

    def read(self, ref: EpisodeRef, keys: set[str] | None = None) -> SourceEpisode:
        start, stop = ref.handle
        episode = SourceEpisode(ref, stop - start)
        for key in keys if keys is not None else self._keys:
            if key not in self._keys:
                continue
            array = self.root[f"data/{key}"]
            if array.shape[0] < stop:
                raise SourceError(
                    f"{self.path}: episode {ref.index}: data/{key} has {array.shape[0]} steps but meta/episode_ends needs {stop}; "
                    "the buffer is truncated, drop its last episodes or copy it again"
                )
            try:
                episode.steps[key] = array[start:stop]
            except Exception as error:  # a missing codec or a damaged chunk
                raise SourceError(
                    f"{self.path}: episode {ref.index}: cannot decode data/{key} ({error}); install imagecodecs for Jpeg2k "
                    "images, or copy the buffer again"
                ) from None
        return episode
