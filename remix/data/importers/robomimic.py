"""robomimic HDF5 datasets (Lift/Can/Square PH/MH, ...), read with h5py.

`data/demo_N` holds `actions`, `states`, `rewards`, `dones`, `obs/<key>`, `next_obs/<key>`; the frame rate is
`env_args.env_kwargs.control_freq`; `mask/<filter key>` lists demo names (Multi-Human: the quality tiers
better/okay/worse, `<tier>_operator_<n>` for the six operators, 20/50_percent, train/valid). Each episode
carries the filter keys that list it (`masks`), so domains and fields can be taken from them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from remix.data.importers.common import EpisodeRef, SourceEpisode, SourceError
from remix.data.importers.convert import SUCCESS
from remix.data.importers.fields import MASKS, TASK


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise SourceError("reading robomimic HDF5 needs h5py: pip install 'remix-stack[import]'") from None
    return h5py


def _demo_number(name: str) -> int:
    match = re.fullmatch(r"demo_(\d+)", name)
    return int(match.group(1)) if match else -1


class RobomimicReader:
    format = "robomimic"

    def __init__(self, path: str | Path, split: str | None = None) -> None:
        self.path = Path(path)
        h5py = _h5py()
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as error:
            raise SourceError(f"{self.path}: cannot open as HDF5 ({error}); the file is truncated or not HDF5, download it again") from None
        if "data" not in self._file:
            raise SourceError(f"{self.path}: no 'data' group; this is not a robomimic dataset (pass format=)")
        data = self._file["data"]
        self.demos = sorted((name for name in data if name.startswith("demo_")), key=_demo_number)
        if not self.demos:
            raise SourceError(f"{self.path}: data/ holds no demo_N groups; nothing to import")
        self.env_meta = json.loads(data.attrs.get("env_args", "{}") or "{}")
        freq = self.env_meta.get("env_kwargs", {}).get("control_freq")
        self.fps: float | None = float(freq) if freq else None
        self.masks = {
            key: {bytes(n).decode() if isinstance(n, (bytes, np.bytes_)) else str(n) for n in self._file[f"mask/{key}"][:]}
            for key in (self._file["mask"] if "mask" in self._file else [])
        }
        if split is not None and split not in self.masks:
            raise SourceError(f"{self.path}: no filter key {split!r} for split=; it has {sorted(self.masks)}")
        self.split = split
        first = data[self.demos[0]]
        self._step_keys = sorted(self._arrays(first, ""))

    def _arrays(self, group: Any, prefix: str) -> list[str]:
        h5py = _h5py()
        keys = []
        for name, member in group.items():
            if isinstance(member, h5py.Dataset):
                keys.append(f"{prefix}{name}")
            else:
                keys.extend(self._arrays(member, f"{prefix}{name}/"))
        return keys

    @property
    def step_keys(self) -> list[str]:
        return self._step_keys

    @property
    def meta_keys(self) -> list[str]:
        return [MASKS, TASK, SUCCESS]

    def refs(self) -> list[EpisodeRef]:
        demos = [d for d in self.demos if self.split is None or d in self.masks[self.split]]
        return [EpisodeRef(self.path.stem, _demo_number(d), str(self.path), d, self.split or "") for d in demos]

    def read(self, ref: EpisodeRef, keys: set[str] | None = None) -> SourceEpisode:
        demo = self._file[f"data/{ref.handle}"]
        where = f"{self.path}: episode {ref.index} ({ref.handle})"
        length = int(demo.attrs.get("num_samples", len(demo["actions"])))
        episode = SourceEpisode(ref, length)
        for key in keys if keys is not None else self._step_keys:
            if key not in self._step_keys:
                continue
            try:
                episode.steps[key] = demo[key][()]
            except KeyError:
                raise SourceError(f"{where}: has no {key}, which demo {self.demos[0]} has; fix the mapping or drop the demo") from None
            except OSError as error:
                raise SourceError(f"{where}: cannot read {key} ({error}); the file is truncated or corrupt, download it again") from None
        episode.meta[MASKS] = sorted(key for key, names in self.masks.items() if ref.handle in names)
        episode.meta[TASK] = str(self.env_meta.get("env_name", ""))
        if "rewards" in demo:
            episode.meta[SUCCESS] = bool(np.max(demo["rewards"][()]) > 0)
        return episode
