"""Frozen-feature mode against the full mode on the built-in image data (32x32, conv encoder, 1x).

One reference per seed; then the DRO stage twice from it: full (the proxy trains its image encoder
every step) and frozen (`features.mode=reference`: every window encoded once by the reference's
encoder, the proxy a head on the cache), plus `features.mode=imagenet` when ResNet-18 ImageNet weights
are on disk. Prints the DRO stage's time per step (training loop only; the one-off encoding pass
separately), the speed-up, the weights of each mode and the L1 distance between them.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/frozen_features.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace

import torch
from remix_ablations import MODALITIES, settings_for  # same folder (run as a script)
from rich.console import Console

from remix.core.distributed import init_distributed
from remix.core.features import FeatureSettings, imagenet_weights_path
from remix.core.run import DRO_STATE, data_stage, dro_stage, prepare_run_dir, reference_stage


def compare(seed: int, scale: int, console: Console) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(
            [f"out={tmp}/run", f"seed={seed}", f"data.builtin.episodes_scale={scale}", *MODALITIES["image32"]]
        )
        dist = init_distributed("cpu")
        prepare_run_dir(settings, dist)
        run = data_stage(settings, dist, console)
        reference = reference_stage(settings, run, dist, console)
        modes = ["off", "reference"] + (["imagenet"] if imagenet_weights_path() is not None else [])
        for mode in modes:
            (settings.out / DRO_STATE).unlink(missing_ok=True)
            start = time.perf_counter()
            outcome = dro_stage(replace(settings, features=FeatureSettings(mode=mode)), run, reference, dist)  # type: ignore[arg-type]
            total = time.perf_counter() - start
            rows.append(
                {
                    "mode": mode,
                    "seed": seed,
                    "weights": outcome.result.weights,
                    "sizes": run.sizes,
                    "per_step": outcome.result.seconds / outcome.steps,
                    "setup": total - outcome.result.seconds,
                    "steps": outcome.steps,
                }
            )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scale", type=int, default=1, help="data.builtin.episodes_scale")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    console = Console(stderr=True)
    print(f"torch threads: {torch.get_num_threads()}; ImageNet weights on disk: {imagenet_weights_path()}")
    rows = [row for seed in args.seeds for row in compare(seed, args.scale, console)]
    domains = list(rows[0]["weights"])
    print(
        f"{'seed':>4} {'mode':>10} {'ms/step':>8} {'x faster':>8} {'setup s':>8} {'L1 to full':>10}  "
        + "  ".join(domains)
    )
    for row in rows:
        full = next(r for r in rows if r["seed"] == row["seed"] and r["mode"] == "off")
        l1 = sum(abs(row["weights"][d] - full["weights"][d]) for d in domains)
        print(
            f"{row['seed']:>4} {row['mode']:>10} {1000 * row['per_step']:8.1f} {full['per_step'] / row['per_step']:8.1f} "
            f"{row['setup']:8.1f} {l1:10.3f}  "
            + "  ".join(
                f"{row['weights'][d]:.3f} ({row['weights'][d] / row['sizes'][d]:.2f}x)" for d in domains
            )
        )


if __name__ == "__main__":
    sys.exit(main())
