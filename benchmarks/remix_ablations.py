"""Re-Mix design choices measured on the built-in synthetic data (clean, noisy, random = pure noise, centimetres).

Two studies, each one command; every row is a full remix-weights run (the default job's settings,
`remix=tiny`, plus the overrides shown) and prints the weights as multiples of the size share:

  scoring   the per-domain DRO score: the release's "positive", DoReMi's "all", and both with the
            domains the reference stage found unlearnable scoring 0 (dro.unlearnable=zero), at 1x and
            5x data, state-only and 32x32 images, over seeds. One reference per (data, seed) serves all
            scorings (the scoring only acts in the DRO stage).
  fig4      the paper's Fig. 4 ablations beside the default: the reference taken well past the chosen
            step, continuous actions (regression loss), no per-domain normalization (one pooled
            Gaussian), bounds normalization.

    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/remix_ablations.py scoring --seeds 0 1 2
    OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python benchmarks/remix_ablations.py fig4 --seeds 0 1 2

Results also go to --json (appended per run, so an interrupted study keeps what it measured).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_module
from rich.console import Console

from remix.core.cli import settings_from_config
from remix.core.distributed import init_distributed
from remix.core.run import (
    DRO_STATE,
    WeightsSettings,
    data_stage,
    dro_stage,
    prepare_run_dir,
    reference_stage,
    run_weights,
)

MODALITIES = {
    "state": [],
    "image32": [
        "data.builtin.image_size=32",
        "model.cameras=[cam0]",
        "model.use_state=false",
        "model.encoder=tiny",
    ],
}
SCORINGS = {
    "positive (release)": {"scoring": "positive", "unlearnable": "score"},
    "all (DoReMi)": {"scoring": "all", "unlearnable": "score"},
    "positive, unlearnable=zero": {"scoring": "positive", "unlearnable": "zero"},
    "all, unlearnable=zero": {"scoring": "all", "unlearnable": "zero"},
}
DOMAINS = ("clean", "noisy", "random", "centimetres")


def settings_for(overrides: Sequence[str]) -> WeightsSettings:
    """Typed settings exactly as `remix-weights <overrides>` would build them."""
    with initialize_config_module(config_module="remix.configs", version_base=None):
        return settings_from_config(compose("weights", overrides=list(overrides)))


def _record(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def scoring_runs(
    overrides: list[str], scorings: dict[str, dict[str, str]], console: Console
) -> list[dict[str, Any]]:
    """One reference, then one DRO stage per scoring; returns a row per scoring."""
    settings = settings_for(overrides)
    dist = init_distributed("cpu")
    prepare_run_dir(settings, dist)
    run = data_stage(settings, dist, console)
    start = time.perf_counter()
    reference = reference_stage(settings, run, dist, console)
    rows = []
    for label, dro in scorings.items():
        (settings.out / DRO_STATE).unlink(missing_ok=True)  # each scoring starts its own DRO stage
        outcome = dro_stage(replace(settings, dro=replace(settings.dro, **dro)), run, reference, dist)  # type: ignore[arg-type]
        rows.append(
            {
                "variant": label,
                "weights": outcome.result.weights,
                "sizes": run.sizes,
                "reference_step": reference.info["step"],
                "unlearnable": list(reference.unlearnable),
                "dro_steps": outcome.steps,
            }
        )
    console.print(f"  {len(scorings)} scorings in {time.perf_counter() - start:.0f} s")
    return rows


def summarize(rows: list[dict[str, Any]], group_keys: Sequence[str]) -> None:
    """A markdown table per group: mean (min-max over seeds) of weight / size share per domain and variant."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in group_keys), []).append(row)
    for key, members in groups.items():
        seeds = sorted({r["seed"] for r in members})
        print(f"\n{', '.join(map(str, key))}, seeds {seeds}: weight / size share, mean (min-max)\n")
        print("| variant | " + " | ".join(DOMAINS) + " | random < share | clean, centimetres > share |")
        print("|---" * (len(DOMAINS) + 3) + "|")
        for variant in dict.fromkeys(r["variant"] for r in members):
            rs = [r for r in members if r["variant"] == variant]
            cells = []
            for d in DOMAINS:
                ratios = [r["weights"][d] / r["sizes"][d] for r in rs]
                cells.append(f"{statistics.mean(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
            junk = sum(r["weights"]["random"] < r["sizes"]["random"] for r in rs)
            gain = sum(all(r["weights"][d] > r["sizes"][d] for d in ("clean", "centimetres")) for r in rs)
            print(f"| {variant} | " + " | ".join(cells) + f" | {junk}/{len(rs)} | {gain}/{len(rs)} |")


def study_scoring(args: argparse.Namespace, console: Console) -> list[dict[str, Any]]:
    rows = []
    for modality in args.modalities:
        for scale in args.scales:
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    overrides = [
                        f"out={tmp}/run",
                        f"seed={seed}",
                        f"data.builtin.episodes_scale={scale}",
                        *MODALITIES[modality],
                    ]
                    console.print(f"[bold]{modality} {scale}x seed {seed}[/bold]")
                    for row in scoring_runs(overrides, SCORINGS, console):
                        row |= {"study": "scoring", "modality": modality, "scale": f"{scale}x", "seed": seed}
                        rows.append(row)
                        _record(args.json, row)
    summarize(rows, ("modality", "scale"))
    return rows


def fig4_variants(settings: WeightsSettings, past_evals: int) -> dict[str, WeightsSettings]:
    """The default and each Fig. 4 ablation, as settings."""
    a, r = settings.actions, settings.reference
    return {
        "default": settings,
        f"reference +{past_evals} evals past chosen": replace(
            settings, reference=replace(r, past_chosen_evals=past_evals)
        ),
        "continuous actions (L2)": replace(settings, actions=replace(a, continuous=True)),
        "no per-domain normalization": replace(settings, actions=replace(a, normalization="global")),
        "bounds normalization": replace(settings, actions=replace(a, normalization="bounds", bins="uniform")),
    }


def study_fig4(args: argparse.Namespace, console: Console) -> list[dict[str, Any]]:
    rows = []
    for modality in args.modalities:
        for scale in args.scales:
            for seed in args.seeds:
                base = settings_for(
                    [
                        "out=unused",
                        f"seed={seed}",
                        f"data.builtin.episodes_scale={scale}",
                        *MODALITIES[modality],
                    ]
                )
                for label, settings in fig4_variants(base, args.past_evals).items():
                    with tempfile.TemporaryDirectory() as tmp:
                        console.print(f"[bold]{modality} {scale}x seed {seed}: {label}[/bold]")
                        start = time.perf_counter()
                        result = run_weights(replace(settings, out=Path(tmp) / "run"), console=console)
                    row = {
                        "study": "fig4",
                        "variant": label,
                        "modality": modality,
                        "scale": f"{scale}x",
                        "seed": seed,
                        "weights": result.weights,
                        "sizes": result.size_weights,
                        "reference_step": result.reference_step,
                        "unlearnable": list(result.unlearnable),
                        "seconds": time.perf_counter() - start,
                    }
                    rows.append(row)
                    _record(args.json, row)
    summarize(rows, ("modality", "scale"))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "study", choices=["scoring", "fig4", "table"], help="table: print --json's rows again"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--modalities", nargs="+", default=list(MODALITIES), choices=list(MODALITIES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--past-evals", type=int, default=10, help="fig4: evaluations past the chosen reference"
    )
    parser.add_argument("--json", type=Path, default=Path("runs/remix-ablations.jsonl"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    console.print(f"torch threads: {torch.get_num_threads()}; results appended to {args.json}")
    if args.study == "table":
        rows = [json.loads(line) for line in args.json.read_text().splitlines()]
        for study in dict.fromkeys(r["study"] for r in rows):
            summarize([r for r in rows if r["study"] == study], ("study", "modality", "scale"))
    elif args.study == "scoring":
        study_scoring(args, console)
    else:
        study_fig4(args, console)


if __name__ == "__main__":
    sys.exit(main())
