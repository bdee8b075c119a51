"""remix-select on MuJoCo sim data: random-action junk is scored as harmful and never selected."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from remix.select.config import ClusterSettings, DatamilSettings, DataSettings, ProxySettings, SelectSettings  # noqa: E402
from remix.select.report import cluster_domains  # noqa: E402
from remix.select.run import run_select  # noqa: E402
from remix.select.simdata import make_sim_store  # noqa: E402


@pytest.mark.slow
def test_sim_junk_gets_negative_scores_and_is_never_selected(tmp_path):
    target = make_sim_store(tmp_path / "target.zarr", "put_red_in_green", "expert", 12, seed=100)
    prior = [make_sim_store(tmp_path / "put_red_in_green.zarr", "put_red_in_green", "expert", 8, seed=400),
             make_sim_store(tmp_path / "lift_red.zarr", "lift_red", "expert", 6, seed=200),
             make_sim_store(tmp_path / "random_actions.zarr", "put_red_in_green", "random", 8, seed=300, max_steps=15)]
    settings = SelectSettings(out=tmp_path / "sel", target=(str(target),), data=DataSettings(paths=tuple(map(str, prior))), budget=0.3,
                              cluster=ClusterSettings(kmeans=5),
                              proxy=ProxySettings(steps=200, batch_size=64, hidden_dims=(64, 64), state_hidden=32,
                                                  n_bins=24, lr=2e-3, warmup_steps=10),
                              datamil=DatamilSettings(runs=16, checkpoints=4, max_windows=32))
    result = run_select(settings)
    junk = np.array([next(iter(m)) == "random_actions" for m in cluster_domains(result.data)])
    assert junk.any() and (~junk).any()
    assert result.scores["regression"][junk].mean() < 0
    assert not result.kept[junk].any()
    assert result.shares["datamil"]["random_actions"] == 0.0
    assert result.rank_correlation is not None and np.isfinite(result.rank_correlation)
