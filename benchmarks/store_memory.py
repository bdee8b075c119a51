"""Memory stays flat as a dataset grows: peak RSS of a training-style reader vs. store size.

For each size, a fresh process reads a fixed number of random windows (2-frame image history, an action
chunk and the goal image) through a torch DataLoader with several workers, and reports the peak resident
memory of the main process and of its workers. The store grows 16x; the readers' memory should not.

    python benchmarks/store_memory.py [--sizes 8000 32000 128000] [--samples 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

READER = """
import json, resource, sys, torch
torch.set_num_threads(1)
from remix.data import WindowSampler
path, samples, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sampler = WindowSampler(path, n_obs=2, horizon=4, obs_keys=("images/cam0", "state"), goal_keys=("images/cam0",))
picks = torch.utils.data.RandomSampler(sampler, replacement=True, num_samples=samples)
loader = torch.utils.data.DataLoader(sampler, batch_size=32, sampler=picks, num_workers=workers)
seen = sum(len(batch["episode"]) for batch in loader)
print(json.dumps({"seen": seen, "main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def build_store(path: Path, steps: int, image_size: int, episode_length: int = 200) -> None:
    from remix.data import EpisodeStore

    store = EpisodeStore.create(path, fps=5, cameras={"cam0": (image_size, image_size)}, overwrite=True)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(episode_length, image_size, image_size, 3), dtype=np.uint8)
    for index in range(steps // episode_length):
        store.add_episode(
            {
                "action": rng.normal(size=(episode_length, 7)).astype(np.float32),
                "state": rng.normal(size=(episode_length, 7)).astype(np.float32),
                "images/cam0": np.roll(frames, index, axis=0),
            },
            domain=f"d{index % 4}",
        )


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8000, 32000, 128000], help="store sizes in steps")
    parser.add_argument("--samples", type=int, default=2000, help="windows read per size")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers")
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()
    print(f"reader: DataLoader batch 32, {args.workers} workers, torch threads 1, {args.samples} windows per size")
    print(f"{'steps':>8} {'on disk MB':>11} {'build s':>8} {'read s':>7} {'main RSS MB':>12} {'worker RSS MB':>14}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.sizes:
            path = Path(tmp) / f"s{steps}.zarr"
            start = time.perf_counter()
            build_store(path, steps, args.image_size)
            built = time.perf_counter() - start
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", READER, str(path), str(args.samples), str(args.workers)],
                capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            read = time.perf_counter() - start
            result = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(result)
            print(f"{steps:>8} {disk_mb(path):>11.1f} {built:>8.1f} {read:>7.1f} {result['main_mb']:>12.1f} {result['workers_mb']:>14.1f}")
    growth = max(r["main_mb"] + r["workers_mb"] for r in rows) / min(r["main_mb"] + r["workers_mb"] for r in rows)
    print(f"dataset grew {args.sizes[-1] / args.sizes[0]:.0f}x; peak reader memory (main + worker) ratio largest/smallest: {growth:.2f}x")



if __name__ == "__main__":
    main()
