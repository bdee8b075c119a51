"""remix-select end to end on small synthetic data: junk is scored as harmful and never selected, the
estimators are compared, and the written selection trains with remix-train data.subset=... directly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from remix.common.errors import ConfigError, StoreError
from remix.data import EpisodeStore
from remix.data.synthetic import SyntheticDomain, make_synthetic_store
from remix.select.config import (
    ClusterSettings,
    DatamilSettings,
    DataSettings,
    ModelSettings,
    ProxySettings,
    SelectSettings,
)
from remix.select.report import cluster_domains
from remix.select.run import run_select

BIN = Path(sys.executable).parent
PRIOR = (SyntheticDomain("clean", 10, 15), SyntheticDomain("random", 10, 15, pure_noise=True),
         SyntheticDomain("centimetres", 6, 15, action_scale=100.0))
SMALL_PROXY = ProxySettings(steps=250, batch_size=64, hidden_dims=(64, 64), state_hidden=32, n_bins=24, lr=2e-3,
                            warmup_steps=10)


def _data(root: Path, image_size: int = 0) -> tuple[tuple[str, ...], str]:
    """Clean, pure-noise and centimetre prior stores and a 20-demo target of the clean task."""
    for i, domain in enumerate(PRIOR):
        make_synthetic_store(root / f"{domain.name}.zarr", replace(domain, image_size=image_size), seed=i)
    make_synthetic_store(root / "target.zarr", SyntheticDomain("target", 20, 15, image_size=image_size), seed=9)
    return tuple(str(root / f"{d.name}.zarr") for d in PRIOR), str(root / "target.zarr")


@pytest.mark.slow
def test_datamil_scores_junk_as_harmful_and_the_selection_trains(tmp_path):
    paths, target = _data(tmp_path / "data", image_size=16)  # remix-train's policy needs a camera
    settings = SelectSettings(out=tmp_path / "sel", target=(target,), data=DataSettings(paths=paths), budget=0.3,
                              cluster=ClusterSettings(kmeans=6), proxy=SMALL_PROXY,
                              datamil=DatamilSettings(runs=12, checkpoints=4, max_windows=32))
    result = run_select(settings)
    mixes = cluster_domains(result.data)
    junk = np.array([next(iter(m)) == "random" for m in mixes])
    regression, first_order = result.scores["regression"], result.scores["first_order"]
    assert regression[junk].mean() < 0 < regression[~junk].mean(), (regression, mixes)
    assert first_order[junk].mean() < first_order[~junk].mean(), (first_order, mixes)
    assert not result.kept[junk].any() and result.kept.any()
    assert result.shares["datamil"]["random"] == 0.0
    assert result.rank_correlation is not None and np.isfinite(result.rank_correlation)

    manifest = json.loads((tmp_path / "sel/subset.json").read_text())
    kept = sum(EpisodeStore.open(p).num_steps for p in manifest["stores"].values())
    assert kept == manifest["kept_steps"] > 0 and set(manifest["weights"]) <= {"clean", "centimetres"}
    assert (tmp_path / "sel/plots/clusters.png").exists() and (tmp_path / "sel/scores.csv").exists()

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [str(BIN / "remix-train"), str(tmp_path / "policy"), f"data.subset={tmp_path / 'sel'}", f"data.cotrain=[{target}]",
         "model.encoder=tiny", "model.image_size=[16,16]", "train.steps=2", "train.batch_size=4", "train.num_workers=0",
         "train.val_every=2", "train.save_every=2", "train.progress=false", "train.device=cpu"],
        capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "policy/checkpoints/step_00000002/model.safetensors").exists()


def test_retrieval_and_all_keep_the_budget_without_training(tmp_path):
    paths, target = _data(tmp_path / "data")
    prior = sum(EpisodeStore.open(p).num_steps for p in paths)
    weights = tmp_path / "weights.json"  # a Re-Mix weights.json giving the noise domain nothing
    weights.write_text(json.dumps({"domains": ["clean", "random", "centimetres"],
                                   "weights": {"clean": 0.6, "random": 0.0, "centimetres": 0.4}}))
    for method, low, high in (("retrieval", 0.2, 0.4), ("all", 1.0, 1.0)):
        settings = SelectSettings(out=tmp_path / method, target=(target,), data=DataSettings(paths=paths), budget=0.3,
                                  method=method, weights=str(weights))
        result = run_select(settings)
        assert result.shares["remix"]["random"] == 0.0 and result.shares["remix"]["clean"] > 0.4
        assert low * prior <= result.manifest["kept_steps"] <= high * prior
        assert result.regression is None and "datamil" not in result.shares
        assert result.shares["retrieval"]["random"] == 0.0  # random actions are the least similar to the target's


def test_segments_are_written_as_episodes_and_visual_retrieval_runs(tmp_path):
    paths, target = _data(tmp_path / "data", image_size=16)
    settings = SelectSettings(out=tmp_path / "seg", target=(target,), data=DataSettings(paths=paths), budget=0.3,
                              method="retrieval", retrieval="visual", cluster=ClusterSettings(unit="segment", segment_steps=5),
                              model=ModelSettings(cameras=("cam0",)))
    result = run_select(settings)
    assert result.data.features.shape[1] == 8 * 8 * 3 and len(result.data.units) == 3 * sum(d.num_episodes for d in PRIOR)
    for source, written in result.manifest["stores"].items():
        store, original = EpisodeStore.open(written), EpisodeStore.open(source)
        starts, episodes = store.field("selected_from_step"), store.field("selected_from_episode")
        for i in range(store.num_episodes):  # each written episode is a run of kept 5-step segments
            assert starts[i] % 5 == 0 and store.episode_lengths[i] % 5 == 0
            begin = original.episode_bounds(int(episodes[i]))[0] + int(starts[i])
            np.testing.assert_array_equal(store.read_episode(i)["action"],
                                          original.array("action")[begin : begin + store.episode_lengths[i]])
    assert result.manifest["kept_steps"] == sum(EpisodeStore.open(p).num_steps for p in result.manifest["stores"].values())


def test_bad_input_is_one_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([str(BIN / "remix-select"), f"out={tmp_path / 'x'}", "data.paths=[a.zarr]"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 1 and run.stderr.startswith("error: target= is missing") and run.stderr.count("\n") == 1
    for changes, words in (({"budget": 2.0}, "budget must be in"), ({"method": "best"}, "method='best'"),
                           ({"retrieval": "visual"}, "needs a camera"), ({"target": ("t.zarr",)}, "data.paths is empty")):
        with pytest.raises(ConfigError, match=words):
            SelectSettings(out=tmp_path, **changes)
    with pytest.raises(StoreError):
        run_select(SelectSettings(out=tmp_path / "y", target=(str(tmp_path / "nope.zarr"),), data=DataSettings(paths=(str(tmp_path / "no.zarr"),))))
