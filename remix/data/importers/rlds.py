"""RLDS / TFDS datasets (Open X-Embodiment, Bridge V2, DROID) read without TensorFlow.

A TFDS folder `<name>/<version>/` holds `dataset_info.json` (splits, shard lengths, file template),
`features.json` (the feature tree) and TFRecord shards with one `tf.train.Example` per episode, its steps
flattened into keys such as `steps/observation/image_0` (T encoded images) or `steps/action` (T x 7 floats).

Decoding follows the TFDS feature types: Image (JPEG/PNG bytes per step, kept encoded until used), Tensor
(encoding none: float/int64 lists reshaped, float64 comes back at float32 precision since tf.train.Example
has no double list; bytes/zlib: raw little-endian bytes per element, with `/shape` + `/value` sub-keys when
more than one dimension is unknown), Scalar, Text and nested dicts. Bytes are kept as Python `bytes`:
a numpy `S` array would strip trailing NUL bytes and corrupt bytes-encoded tensors ending in zeros.
Episodes keep the shards' (hashed-key) order; `source_index` is the position in that order.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from remix.data.importers.common import EncodedFrames, EpisodeRef, SourceEpisode, SourceError
from remix.data.importers.tfrecord import parse_example, read_record, record_offsets

STEPS = "steps"
UNSUPPORTED = "unsupported:"
# TFDS writes a Sequence nested inside `steps` as a ragged tensor (`<key>/ragged_flat_values` plus
# `<key>/ragged_row_lengths_0`, example_serializer._add_ragged_fields). None of the RT-X mixture's members,
# Bridge or DROID has one (their step features are Tensor, Image, Text and Scalar), so such features are
# listed but refused when mapped, with the way out, instead of decoded.
NESTED = "a Sequence nested inside steps (ragged per step)"


@dataclass(frozen=True)
class FeatureSpec:
    """One leaf of features.json under its flattened key."""

    key: str
    kind: str                     # image | tensor | text
    shape: tuple[int, ...]        # -1 = unknown
    dtype: str
    encoding: str = "none"        # tensors: none | bytes | zlib; images: jpeg | png
    per_step: bool = False


def _leaves(node: dict, prefix: str, per_step: bool, out: dict[str, FeatureSpec], where: Path) -> None:
    cls = node.get("pythonClassName", "").rsplit(".", 1)[-1]
    if "featuresDict" in node:
        for name, child in node["featuresDict"]["features"].items():
            _leaves(child, f"{prefix}{name}/" if prefix or name else name, per_step, out, where)
        return
    key = prefix.rstrip("/")
    if "sequence" in node:
        if per_step:  # a Sequence inside steps: every leaf below it is ragged, listed but refused if mapped
            nested: dict[str, FeatureSpec] = {}
            _leaves(node["sequence"]["feature"], f"{key}/", True, nested, where)
            for leaf in nested.values():
                out[leaf.key] = FeatureSpec(leaf.key, f"{UNSUPPORTED}{NESTED}", (), "", "none", True)
            return
        _leaves(node["sequence"]["feature"], f"{key}/", True, out, where)
        return
    if "image" in node:
        info = node["image"]
        out[key] = FeatureSpec(key, "image", _shape(info), info.get("dtype", "uint8"), info.get("encodingFormat") or "png", per_step)
    elif "tensor" in node:
        info = node["tensor"]
        out[key] = FeatureSpec(key, "tensor", _shape(info), info["dtype"], info.get("encoding") or "none", per_step)
    elif "text" in node:
        out[key] = FeatureSpec(key, "text", (), "string", "none", per_step)
    elif "classLabel" in node:
        out[key] = FeatureSpec(key, "tensor", (), "int64", "none", per_step)
    else:
        out[key] = FeatureSpec(key, f"{UNSUPPORTED}a TFDS {cls or 'unknown'} feature", (), "", "none", per_step)


def _shape(info: dict) -> tuple[int, ...]:
    return tuple(int(d) for d in info.get("shape", {}).get("dimensions", []))


def load_features(path: str | Path) -> dict[str, FeatureSpec]:
    """The flattened leaves of a TFDS `features.json`."""
    path = Path(path)
    try:
        tree = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SourceError(f"{path}: cannot read features.json ({error}); is this a TFDS dataset folder?") from None
    out: dict[str, FeatureSpec] = {}
    _leaves(tree, "", False, out, path)
    return out


class RLDSReader:
    """Episodes of a TFDS/RLDS dataset folder, split by split, shard by shard, in file order."""

    format = "rlds"

    def __init__(self, path: str | Path, split: str | None = None) -> None:
        self.path = Path(path)
        info_path = self.path / "dataset_info.json"
        try:
            self.info = json.loads(info_path.read_text())
        except (OSError, ValueError) as error:
            raise SourceError(f"{info_path}: cannot read dataset_info.json ({error}); point SRC at <name>/<version>/") from None
        self.features = load_features(self.path / "features.json")
        self.name = f"{self.info.get('name', self.path.parent.name)}/{self.info.get('version', self.path.name)}"
        self.splits = {s["name"]: s for s in self.info.get("splits", [])}
        if split is not None and split not in self.splits:
            raise SourceError(f"{info_path}: no split {split!r}; it has {sorted(self.splits)} (set split=)")
        self.split = split
        self.fps: float | None = None  # RLDS stores no frame rate

    @property
    def step_keys(self) -> list[str]:
        return sorted(k for k, f in self.features.items() if f.per_step)

    @property
    def meta_keys(self) -> list[str]:
        return sorted(k for k, f in self.features.items() if not f.per_step)

    def check_keys(self, keys: set[str]) -> None:
        """Refuse, before any episode is read, a mapping that names a feature this reader cannot decode."""
        for key in sorted(keys):
            spec = self.features.get(key)
            if spec is not None and spec.kind.startswith(UNSUPPORTED):
                raise SourceError(
                    f"{self.path / 'features.json'}: feature {key!r} is {spec.kind[len(UNSUPPORTED):]}, which this "
                    "importer does not decode; leave it out of the mapping (map only the keys you need)"
                )

    def shards(self, split: str) -> list[Path]:
        info = self.splits[split]
        template = info.get("filepathTemplate", "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}")
        count = len(info.get("shardLengths", [])) or 1
        file_format = self.info.get("fileFormat", "tfrecord")
        if file_format != "tfrecord":
            raise SourceError(f"{self.path}: shards are {file_format}; only tfrecord RLDS datasets can be imported")
        names = []
        for i in range(count):
            name = template.replace("{DATASET}", self.info.get("name", self.path.parent.name)).replace("{SPLIT}", split)
            name = name.replace("{FILEFORMAT}", file_format).replace("{SHARD_X_OF_Y}", f"{i:05d}-of-{count:05d}")
            names.append(self.path / name)
        return names

    def refs(self) -> list[EpisodeRef]:
        """Every episode, listed from the shards' framing only (no decoding)."""
        refs: list[EpisodeRef] = []
        for split in [self.split] if self.split else list(self.splits):
            lengths = [int(n) for n in self.splits[split].get("shardLengths", [])]
            index = 0
            for number, shard in enumerate(self.shards(split)):
                if not shard.exists():
                    raise SourceError(f"{shard}: shard {number} of split {split} is missing; download it again")
                offsets = record_offsets(shard)
                if lengths and len(offsets) != lengths[number]:
                    raise SourceError(
                        f"{shard}: has {len(offsets)} episodes but dataset_info.json lists {lengths[number]}; "
                        "the shard is incomplete, download it again"
                    )
                for record, offset in enumerate(offsets):
                    refs.append(EpisodeRef(f"{self.name}/{split}", index, str(shard), (offset, record), split))
                    index += 1
        return refs

    def read(self, ref: EpisodeRef, keys: set[str] | None = None) -> SourceEpisode:
        offset, record = ref.handle
        where = f"{ref.location}: episode {ref.index} of {ref.source}"
        try:
            example = parse_example(read_record(ref.location, offset, record, label=f" (episode {ref.index} of {ref.source})"))
        except (ValueError, IndexError) as error:
            raise SourceError(f"{where}: the record is not a valid tf.train.Example ({error}); the shard is corrupt") from None
        length = self._length(example, where)
        episode = SourceEpisode(ref, length)
        for key, spec in self.features.items():
            if keys is not None and key not in keys:
                continue
            value = decode_feature(spec, example, length if spec.per_step else None, where)
            (episode.steps if spec.per_step else episode.meta)[key] = value
        return episode

    def _length(self, example: dict[str, Any], where: str) -> int:
        for spec in self.features.values():
            if not spec.per_step or spec.kind.startswith(UNSUPPORTED):
                continue
            raw = example.get(spec.key)
            if raw is None:
                continue
            if isinstance(raw, list):
                return len(raw)
            if spec.kind == "tensor" and -1 not in spec.shape:
                return len(raw) // max(1, int(np.prod(spec.shape)))
        raise SourceError(f"{where}: no step feature found in the record; the shard does not match features.json")


def _reshape(values: np.ndarray, shape: tuple[int, ...], where: str, key: str) -> np.ndarray:
    if shape.count(-1) > 1:
        raise SourceError(f"{where}: {key} has several unknown dimensions without a shape field; re-export with encoding=zlib")
    try:
        return values.reshape(shape)
    except ValueError:
        raise SourceError(f"{where}: {key} has {values.size} values, which do not fit shape {shape}; the record is corrupt") from None


def _from_bytes(data: bytes, spec: FeatureSpec, shape: tuple[int, ...], where: str) -> np.ndarray:
    if spec.encoding == "zlib":
        try:
            data = zlib.decompress(data)
        except zlib.error:
            raise SourceError(f"{where}: {spec.key} is not valid zlib data; the record is corrupt, download it again") from None
    dtype = np.dtype(spec.dtype).newbyteorder("<")
    if len(data) % dtype.itemsize:
        raise SourceError(f"{where}: {spec.key} holds {len(data)} bytes, not a whole number of {spec.dtype}; the record is corrupt")
    return _reshape(np.frombuffer(data, dtype).astype(spec.dtype), shape, where, spec.key)


def decode_feature(spec: FeatureSpec, example: dict[str, Any], length: int | None, where: str) -> Any:
    """One feature's value: (T, ...) for step features (T = `length`), the value itself otherwise."""
    lead = (length,) if length is not None else ()
    if spec.kind.startswith(UNSUPPORTED):
        raise SourceError(f"{where}: feature {spec.key} is {spec.kind[len(UNSUPPORTED):]}, which this importer does not decode; "
                          "leave it out of the mapping")
    if spec.kind == "tensor" and spec.encoding != "none" and spec.shape.count(-1) > 1:
        values = example.get(f"{spec.key}/value", [])
        shapes = np.asarray(example.get(f"{spec.key}/shape", []), np.int64).reshape(len(values), len(spec.shape))
        items = [_from_bytes(v, spec, tuple(s), where) for v, s in zip(values, shapes)]
        return items if length is not None else items[0]
    raw = example.get(spec.key)
    if raw is None:
        raise SourceError(f"{where}: feature {spec.key} is missing from the record; the shard does not match features.json")
    if spec.kind == "image":
        return EncodedFrames(raw, f"{where}, {spec.key}") if length is not None else EncodedFrames(raw, where)[0]
    if spec.kind == "text":
        texts = [bytes(v).decode("utf-8", errors="replace") for v in raw]
        return np.array(texts, dtype=object) if length is not None else (texts[0] if texts else "")
    if spec.encoding in ("bytes", "zlib"):
        items = [_from_bytes(v, spec, spec.shape, where) for v in raw]
        if length is None:
            return items[0]
        shapes = {item.shape for item in items}
        return np.stack(items) if len(shapes) == 1 and items else items
    if isinstance(raw, list):  # string tensors: keep bytes objects (NUL bytes intact)
        return _reshape(np.array([bytes(v) for v in raw] + [b""], dtype=object)[:-1], lead + spec.shape, where, spec.key)
    values = raw.astype(spec.dtype if spec.dtype != "bool" else np.int64)
    if spec.dtype == "bool":
        values = values.astype(bool)
    return _reshape(values, lead + spec.shape, where, spec.key)
