"""`remix-select` end to end: load and cluster the prior data, score the clusters, choose under the
budget, write the selection (stores + subset.json) and the report.

Run directory (`out`):
    subset.json         the selection manifest (remix-subset's form) + method, budget, estimator figures
    <store>.zarr        the kept episodes/segments of each prior store
    scores.csv          per cluster: domains, steps, every score computed, kept by each method
    estimators.json     regression runs (masks, losses), ridge, LOO R^2, rank correlation, costs
    plots/clusters.png  top and bottom clusters with a frame each; plots/shares.png; plots/estimators.png
    builtin-data/       the built-in synthetic prior + target stores when no data was given
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from remix.common.atomic import write_json_atomic
from remix.common.cli import prepare_out_dir
from remix.core.run import load_weights
from remix.core.subset import plan_subset
from remix.select import report
from remix.select.config import SelectSettings
from remix.select.data import SelectionData, load_selection_data
from remix.select.estimators import (
    FirstOrderResult,
    RegressionResult,
    first_order_scores,
    rank_correlation,
    regression_scores,
)
from remix.select.selection import SUBSET_FILE, choose, domain_shares, retrieval_scores, write_selection

BUILTIN_TARGET_EPISODES = 25


@dataclass
class SelectResult:
    out: Path
    data: SelectionData
    kept: np.ndarray  # mask over clusters kept by the chosen method
    scores: dict[str, np.ndarray]  # every score column computed (regression, first_order, retrieval)
    shares: dict[str, dict[str, float]]  # method -> domain -> share of kept steps
    rank_correlation: float | None
    regression: RegressionResult | None
    first_order: FirstOrderResult | None
    manifest: dict[str, Any]


def builtin_settings(settings: SelectSettings) -> SelectSettings:
    """The built-in synthetic data: Re-Mix's four demo domains as prior (one of them pure noise) and a
    25-demo target store of the same reaching task, made in out/builtin-data."""
    from remix.data.synthetic import (
        DEFAULT_DOMAINS,
        SyntheticDomain,
        make_synthetic_dataset,
        make_synthetic_store,
    )

    root = Path(settings.out) / "builtin-data"
    scale = settings.data.builtin.episodes_scale
    prior = [replace(d, num_episodes=d.num_episodes * scale) for d in DEFAULT_DOMAINS]
    paths = make_synthetic_dataset(root, prior, seed=settings.seed)
    target = root / "target.zarr"
    make_synthetic_store(target, SyntheticDomain("target", BUILTIN_TARGET_EPISODES, action_noise=0.05),
                         seed=settings.seed + 101)
    data = replace(settings.data, paths=tuple(str(p) for p in paths), domain_key=None)
    return replace(settings, data=data, target=(str(target),))


def _remix_row(settings: SelectSettings, data: SelectionData) -> tuple[dict[str, float], int]:
    """Domain shares of remix-subset's choice at the same budget (the Re-Mix comparison row)."""
    info = load_weights(settings.weights)  # type: ignore[arg-type]
    plan = plan_subset(data.domains, info["weights"], settings.budget, settings.seed)
    total = sum(p.kept_steps for p in plan)
    return {p.name: (p.kept_steps / total if total else 0.0) for p in plan}, total


def _estimate(settings: SelectSettings, data: SelectionData, console: Console
              ) -> tuple[np.ndarray, RegressionResult | None, FirstOrderResult | None, float | None]:
    which = settings.datamil.estimator
    reg = fo = None
    if which in ("regression", "both"):
        reg = regression_scores(settings, data)
        console.print(f"regression: {reg.trainings} proxy trainings in {reg.seconds:.1f} s; ridge {reg.ridge:g}, "
                      f"leave-one-out R^2 {reg.loo_r2:.2f}; target loss: target only {reg.loss_none:.3f}, "
                      f"+ all prior {reg.loss_all:.3f}, random subsets {reg.losses.mean():.3f} +- {reg.losses.std():.3f}")
    if which in ("first_order", "both"):
        fo = first_order_scores(settings, data)
        console.print(f"first-order: 1 proxy training + {fo.gradient_evaluations} gradient evaluations in {fo.seconds:.1f} s")
    rho = rank_correlation(reg.scores, fo.scores) if reg is not None and fo is not None else None
    if rho is not None:
        console.print(f"rank correlation (Spearman) regression vs first-order over {data.num_clusters} clusters: {rho:.3f}")
    scores = reg.scores if reg is not None else fo.scores  # type: ignore[union-attr]
    return scores, reg, fo, rho


def _write_reports(settings: SelectSettings, result: SelectResult, selections: dict[str, np.ndarray]) -> None:
    out, data = Path(settings.out), result.data
    (out / "plots").mkdir(exist_ok=True)
    report.write_scores_csv(out / "scores.csv", data, result.scores, selections)
    main = result.scores.get("regression", result.scores.get("first_order", result.scores["retrieval"]))
    report.plot_clusters(out / "plots" / "clusters.png", data, main, result.kept, settings.report_clusters)
    report.plot_shares(out / "plots" / "shares.png", result.shares)
    if result.regression is not None and result.first_order is not None:
        report.plot_estimators(out / "plots" / "estimators.png", data, result.regression.scores,
                               result.first_order.scores, result.rank_correlation or float("nan"))
    figures: dict[str, Any] = {"rank_correlation": result.rank_correlation, "clusters": data.num_clusters,
                               "units": len(data.units)}
    if result.regression is not None:
        r = result.regression
        figures["regression"] = {"trainings": r.trainings, "seconds": r.seconds, "ridge": r.ridge, "loo_r2": r.loo_r2,
                                 "loss_target_only": r.loss_none, "loss_all_prior": r.loss_all,
                                 "losses": r.losses.tolist(), "masks": r.masks.astype(int).tolist()}
    if result.first_order is not None:
        figures["first_order"] = {"seconds": result.first_order.seconds,
                                  "gradient_evaluations": result.first_order.gradient_evaluations}
    write_json_atomic(out / "estimators.json", figures)


def run_select(settings: SelectSettings, console: Console | None = None) -> SelectResult:
    """Score, choose, write (see the module docstring)."""
    console = console or Console()
    torch.set_num_threads(settings.threads)
    out = prepare_out_dir(settings.out, "the selection", holds=(SUBSET_FILE, "a selection"),
                          overwrite=settings.overwrite)
    if not settings.data.paths:
        settings = builtin_settings(settings)
    started = time.perf_counter()
    data = load_selection_data(settings)
    console.print(f"{len(data.units)} {settings.cluster.unit}s of {len(data.domains)} prior domains in "
                  f"{data.num_clusters} clusters; target: {len(data.target_train['bins'])} training and "
                  f"{len(data.target_heldout['bins'])} held-out windows")
    columns: dict[str, np.ndarray] = {}
    scores = reg = fo = rho = None
    if settings.method == "datamil":
        scores, reg, fo, rho = _estimate(settings, data, console)
        if reg is not None:
            columns["regression"] = reg.scores
            columns["regression_stderr"] = reg.stderr
        if fo is not None:
            columns["first_order"] = fo.scores
    columns["retrieval"] = retrieval_scores(data)
    methods = (["datamil"] if scores is not None else []) + ["retrieval", "random", "all"]
    floor = np.full(data.num_clusters, settings.datamil.min_score)
    if reg is not None and settings.datamil.estimator != "first_order":
        floor = np.maximum(floor, settings.datamil.min_z * reg.stderr)
    selections = {m: choose(m, data, settings.budget, settings.seed, scores, columns["retrieval"], floor)
                  for m in methods}
    kept = selections[settings.method]
    shares = {m: domain_shares(data, s) for m, s in selections.items()}
    steps = data.cluster_steps()
    kept_steps = {m: int(steps[s].sum()) for m, s in selections.items()}
    if settings.weights:
        shares["remix"], kept_steps["remix"] = _remix_row(settings, data)
    info = {"method": settings.method, "budget": settings.budget, "seed": settings.seed,
            "target": [str(Path(t).resolve()) for t in settings.target], "domain_key": settings.data.domain_key,
            "target_heldout_episodes": data.target_heldout_episodes, "cluster": asdict(settings.cluster),
            "estimator": settings.datamil.estimator if settings.method == "datamil" else None,
            "rank_correlation": rho, "scores_file": "scores.csv"}
    manifest = write_selection(data, kept, out, info)
    result = SelectResult(out, data, kept, columns, shares, rho, reg, fo, manifest)
    _write_reports(settings, result, selections)
    report.print_cluster_table(data, scores if scores is not None else columns["retrieval"], columns, kept,
                               settings.report_clusters, console)
    report.print_share_table(shares, kept_steps, console)
    prior_steps = int(steps.sum())
    console.print(f"{settings.method}: kept {manifest['kept_steps']} of {prior_steps} prior steps "
                  f"(budget {settings.budget:g} = {settings.budget * prior_steps:.0f}) in "
                  f"{time.perf_counter() - started:.0f} s; selection in {out}")
    if manifest["kept_steps"] == 0:
        console.print("[yellow]no prior cluster scored clearly above 0 (datamil.min_score, min_z): "
                      "train on the target demos alone, or add runs (datamil.runs) to cut the noise[/]")
    return result
