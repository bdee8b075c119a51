"""TFRecord files and `tf.train.Example` messages read without TensorFlow.

TFRecord framing (one record): little-endian u64 length, u32 masked CRC32C of those 8 bytes, the data,
u32 masked CRC32C of the data. The mask is `((crc >> 15) | (crc << 17)) + 0xa282ead8` (mod 2^32).

`tf.train.Example` is decoded straight from the protobuf wire format (Example.features = 1;
Features.feature = 1, a map<string, Feature>; Feature.bytes_list = 1 | float_list = 2 | int64_list = 3;
each list's values = 1, numbers packed or not). A hand decoder avoids shipping TensorFlow's .proto files.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import numpy as np

from remix.data.importers.common import SourceError

_MASK_DELTA = 0xA282EAD8
_HEADER = 12  # u64 length + u32 crc


def masked_crc32c(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _header(path: Path, handle, number: int, offset: int, size: int) -> int | None:
    head = handle.read(_HEADER)
    if not head:
        return None
    if len(head) < _HEADER:
        raise SourceError(
            f"{path}: record {number} at byte {offset} is truncated ({len(head)} of {_HEADER} header bytes); "
            "the shard is incomplete, download it again"
        )
    length, crc = struct.unpack("<QI", head)
    if masked_crc32c(head[:8]) != crc:
        raise SourceError(
            f"{path}: record {number} at byte {offset} fails its length CRC32C check; the shard is corrupt, download it again"
        )
    if offset + _HEADER + length + 4 > size:
        raise SourceError(
            f"{path}: record {number} at byte {offset} is truncated (needs {length + 4} bytes, "
            f"{size - offset - _HEADER} left); the shard is incomplete, download it again"
        )
    return length


def record_offsets(path: str | Path) -> list[int]:
    """Byte offsets of every record, from the framing alone (length CRCs checked, data skipped)."""
    path = Path(path)
    size = path.stat().st_size
    offsets: list[int] = []
    with open(path, "rb") as handle:
        offset = 0
        while True:
            length = _header(path, handle, len(offsets), offset, size)
            if length is None:
                return offsets
            offsets.append(offset)
            offset += _HEADER + length + 4
            handle.seek(offset)


def read_record(path: str | Path, offset: int, number: int = 0, verify: bool = True, label: str = "") -> bytes:
    """The data of the record at `offset`, its data CRC32C checked; `label` names the episode in errors."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(offset)
        length = _header(path, handle, number, offset, size)
        if length is None:
            raise SourceError(f"{path}: no record at byte {offset}; the shard changed since it was listed, rerun the import")
        data = handle.read(length)
        (crc,) = struct.unpack("<I", handle.read(4))
    if verify and masked_crc32c(data) != crc:
        raise SourceError(
            f"{path}: record {number} at byte {offset}{label} fails its data CRC32C check; the shard is corrupt, download it again"
        )
    return data


def iter_records(path: str | Path, verify: bool = True) -> Iterator[bytes]:
    for number, offset in enumerate(record_offsets(path)):
        yield read_record(path, offset, number, verify)


def write_record(handle, data: bytes) -> None:
    """Append one framed record (used by tests to corrupt and rebuild shards)."""
    length = struct.pack("<Q", len(data))
    handle.write(length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data)))


# ----------------------------------------------------------------------------- protobuf wire format
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value start, value end or varint value) over buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(buf, pos)
            yield number, wire, pos, pos + length
            pos += length
        elif wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value, value
        elif wire == 5:
            yield number, wire, pos, pos + 4
            pos += 4
        elif wire == 1:
            yield number, wire, pos, pos + 8
            pos += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    if pos != end:
        raise ValueError("protobuf field runs past its message")


def _int64s(buf: bytes, start: int, end: int) -> np.ndarray:
    raw = np.frombuffer(buf, np.uint8, end - start, start)
    if not np.any(raw >= 0x80):  # every value is one byte (bools, small ids): no loop needed
        return raw.astype(np.int64)
    values, pos = [], start
    while pos < end:
        value, pos = _varint(buf, pos)
        values.append(value - (1 << 64) if value >= 1 << 63 else value)
    return np.array(values, dtype=np.int64)


def _feature(buf: bytes, start: int, end: int) -> list[bytes] | np.ndarray:
    for kind, _, list_start, list_end in _fields(buf, start, end):
        if kind == 1:
            return [buf[a:b] for n, w, a, b in _fields(buf, list_start, list_end) if n == 1]
        parts: list[np.ndarray] = []
        for number, wire, a, b in _fields(buf, list_start, list_end):
            if number != 1:
                continue
            if kind == 2:
                parts.append(np.frombuffer(buf, "<f4", (b - a) // 4, a))
            elif wire == 2:
                parts.append(_int64s(buf, a, b))
            else:  # one unpacked varint
                parts.append(np.array([a - (1 << 64) if a >= 1 << 63 else a], dtype=np.int64))
        dtype = np.float32 if kind == 2 else np.int64
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
    return []  # a Feature with no kind set: an empty list


def parse_example(data: bytes) -> dict[str, list[bytes] | np.ndarray]:
    """Decode a serialized `tf.train.Example`: feature name -> list of bytes, float32 or int64 array."""
    out: dict[str, list[bytes] | np.ndarray] = {}
    for number, wire, start, end in _fields(data, 0, len(data)):
        if number != 1 or wire != 2:
            continue
        for entry_number, _, entry_start, entry_end in _fields(data, start, end):
            if entry_number != 1:
                continue
            name, value = "", None
            for part, _, a, b in _fields(data, entry_start, entry_end):
                if part == 1:
                    name = data[a:b].decode("utf-8")
                elif part == 2:
                    value = _feature(data, a, b)
            out[name] = value if value is not None else []
    return out
