"""Import throughput of `remix-data import` on a Bridge-like RLDS set: steps/s per core, bytes and files per frame.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/import_throughput.py [--episodes 40] [--length 38] [--workers 1]

Writes a synthetic RLDS dataset in Bridge V2's schema (the feature tree of tests/fixtures/rlds, two
256x256 JPEG cameras with natural-image-like content, ~38 steps per episode) with the framing and
tf.train.Example encoding TFRecord uses, then times (1) read + parse + decode + resize of both cameras to
224x224 (the pure-Python RLDS path, no store), and (2) the whole import into an episode store. It prints
steps/s, steps/s per core (one process = one core here: OMP_NUM_THREADS=1, cv2 single-threaded) and the
store's bytes per frame and files per 10k frames. The writer runs both ways in the same run, image chunks
written directly (`EpisodeStore.direct_image_writes`, the default) and through zarr's pipeline (the writer
before), and the ratio is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from remix.data.importers.convert import build_episode
from remix.data.importers.options import build_options
from remix.data.importers.rlds import RLDSReader
from remix.data.importers.run import camera_sizes, import_dataset, needed_keys
from remix.data.importers.tfrecord import write_record
from remix.data.store import EpisodeStore

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rlds" / "bridge_mini" / "1.0.0"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: list[bytes] | np.ndarray) -> bytes:
    if isinstance(value, list):
        return _field(1, b"".join(_field(1, v) for v in value))
    if value.dtype.kind == "f":
        return _field(2, _field(1, value.astype("<f4").tobytes()))
    return _field(3, _field(1, b"".join(_varint(int(v) & (2**64 - 1)) for v in value)))


def example(features: dict[str, list[bytes] | np.ndarray]) -> bytes:
    entries = b"".join(_field(1, _field(1, k.encode()) + _field(2, _feature(v))) for k, v in features.items())
    return _field(1, entries)


def natural_frame(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    noise = rng.integers(0, 255, (size // 8, size // 8, 3), dtype=np.uint8)
    image = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)
    return image


def write_dataset(root: Path, episodes: int, length: int) -> Path:
    target = root / "bridge_bench" / "1.0.0"
    target.mkdir(parents=True)
    shutil.copy(FIXTURE / "features.json", target)
    rng = np.random.default_rng(0)
    shard = target / "bridge_bench-train.tfrecord-00000-of-00001"
    with open(shard, "wb") as handle:
        for index in range(episodes):
            frames = {c: [cv2.imencode(".jpg", natural_frame(rng), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for _ in range(length)]
                      for c in ("image_0", "image_1")}
            rows = lambda n: rng.normal(size=(length, n)).ravel()  # noqa: E731
            features = {
                "steps/observation/image_0": frames["image_0"], "steps/observation/image_1": frames["image_1"],
                "steps/observation/state": rows(7), "steps/action": rows(7) * 0.01,
                "steps/observation/depth": [b""] * 0, "steps/language_instruction": [b"put the carrot in the pot"] * length,
                "steps/is_first": np.eye(1, length, 0, dtype=np.int64)[0], "steps/is_last": np.eye(1, length, length - 1, dtype=np.int64)[0],
                "steps/is_terminal": np.zeros(length, np.int64), "steps/reward": np.zeros(length), "steps/discount": np.ones(length),
                "episode_metadata/file_path": [f"/data/bridge_data_v2/toykitchen{index % 7}/task/00/2022/raw/out.npy".encode()],
                "episode_metadata/has_image_0": np.ones(1, np.int64), "episode_metadata/has_image_1": np.ones(1, np.int64),
                "episode_metadata/episode_id": np.array([index], np.int64),
            }
            features.pop("steps/observation/depth")
            write_record(handle, example(features))
    info = {"name": "bridge_bench", "version": "1.0.0", "fileFormat": "tfrecord",
            "splits": [{"name": "train", "filepathTemplate": "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", "shardLengths": [str(episodes)]}]}
    (target / "dataset_info.json").write_text(json.dumps(info))
    return target


def window_read_ms(path: Path, windows: int = 200) -> float:
    """Mean time to read 2 consecutive frames of one camera at random positions (cold cache not forced)."""
    array = EpisodeStore.open(path).array("images/cam0")
    rng = np.random.default_rng(1)
    starts = rng.integers(0, array.shape[0] - 2, windows)
    started = time.perf_counter()
    for start in starts:
        array[int(start) : int(start) + 2]
    return (time.perf_counter() - started) / windows * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--length", type=int, default=38)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--shard-frames", type=int, default=256, help="frames per shard file in the sharded store")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    work = Path(tempfile.mkdtemp())
    try:
        src = write_dataset(work, args.episodes, args.length)
        options = build_options({"image_size": [224, 224], "workers": args.workers, "domain": {"from": "file_path", "map": None, "unmapped": "keep"},
                                 "cameras": {"cam0": "steps/observation/image_0", "cam1": "steps/observation/image_1"}}, preset="bridge")
        steps = args.episodes * args.length
        mb = sum(p.stat().st_size for p in src.iterdir()) / 1e6
        print(f"source: {args.episodes} episodes x {args.length} steps, 2 JPEG cameras 256x256, {mb:.1f} MB of TFRecord")
        reader = RLDSReader(src)
        refs = reader.refs()
        sizes = camera_sizes(reader, refs[0], options)
        started, cpu = time.perf_counter(), time.process_time()
        for ref in refs:
            build_episode(reader.read(ref, needed_keys(options)), options, sizes)
        decode, decode_cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"parse + decode + resize to 224x224 (no store), 1 process: {steps / decode:.0f} steps/s wall, "
              f"{steps / decode_cpu:.0f} steps per CPU-second (= per core)")
        rates: dict[bool, list[float]] = {False: [], True: []}
        walls: dict[bool, list[float]] = {False: [], True: []}
        # zarr / direct / direct / zarr: each writer path runs once early and once late, so that the page-cache
        # writeback of earlier runs and the machine's other load weigh on both alike
        runs = ((0, False), (0, True), (0, True), (0, False), (args.shard_frames, True))
        for number, (shard_frames, direct) in enumerate(runs):
            options.shard_frames = shard_frames
            EpisodeStore.direct_image_writes = direct  # False: every chunk through zarr (the writer before the direct path)
            out = work / f"out{number}.zarr"
            started, cpu = time.perf_counter(), time.process_time()
            result = import_dataset(src, out, options, progress=False)
            total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
            layout = f"{shard_frames} frames per shard" if shard_frames else "one frame per chunk file (today's layout)"
            writer = "chunk files written directly" if direct and not shard_frames else "chunks through zarr"
            print(f"full import, {layout}, {writer}, workers={args.workers}: {result.steps / total:.0f} steps/s wall, "
                  f"{result.steps / total_cpu:.0f} steps per CPU-second of the writer process")
            if not shard_frames:
                rates[direct].append(result.steps / total_cpu)
                walls[direct].append(result.steps / total)
                if len(rates[False]) == 2:
                    ratio, wall_ratio = sum(rates[True]) / sum(rates[False]), sum(walls[True]) / sum(walls[False])
                    print(f"  direct chunk writes vs zarr's pipeline, same run (2 runs each): {ratio:.2f}x steps per "
                          f"CPU-second, {wall_ratio:.2f}x steps/s wall")
            if number in (1, 2):  # the layout of run 0, whose sizes and window reads are printed
                shutil.rmtree(out)
                continue
            files = [p for p in (out / "data" / "images").rglob("*") if p.is_file()]
            frames = result.steps * 2
            print(f"  store: {sum(p.stat().st_size for p in files) / frames / 1e3:.1f} kB per 224x224 frame, "
                  f"{len(files) / frames * 1e4:.0f} files per 10k frames; random 2-frame window read: {window_read_ms(out):.2f} ms")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
