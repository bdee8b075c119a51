"""remix-select fits its windows' preprocessing with the Re-Mix core's function (remix.core.dataset), so the
proxy sees the prior domains exactly as remix-weights would."""

from __future__ import annotations

import numpy as np
import pytest

from remix.common.errors import RemixError
from remix.core.dataset import WindowSpec, fit_window_statistics, prepare_data
from remix.data.domains import discover_domains
from remix.data.synthetic import SyntheticDomain, make_synthetic_store
from remix.select.config import DataSettings, SelectSettings
from remix.select.data import load_selection_data


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("select-prep")
    for name, scale in (("metres", 1.0), ("centimetres", 100.0)):
        make_synthetic_store(root / f"{name}.zarr", SyntheticDomain(name, num_episodes=4, episode_length=6,
                                                                    action_scale=scale))
    make_synthetic_store(root / "target.zarr", SyntheticDomain("target", num_episodes=4, episode_length=6), seed=5)
    return root


def _settings(stores, out) -> SelectSettings:
    return SelectSettings(out=str(out), target=(str(stores / "target.zarr"),),
                          data=DataSettings(paths=(str(stores / "metres.zarr"), str(stores / "centimetres.zarr"))))


def test_prior_domains_are_normalized_as_remix_weights_normalizes_them(stores, tmp_path) -> None:
    settings = _settings(stores, tmp_path)
    selection = load_selection_data(settings)
    spec = WindowSpec(settings.model.n_obs, settings.model.horizon, settings.model.use_state, ())
    weights = prepare_data(discover_domains(settings.data.paths, min_domains=2), spec, n_bins=settings.proxy.n_bins,
                           val_fraction=0.0)
    bins = weights.train.materialize()["bins"].numpy()
    assert np.array_equal(selection.prior["bins"].numpy(), bins)
    assert selection.state_dim == weights.state_dim and bool((selection.state_std > 0).all())


def test_statistics_refuse_non_finite_states_and_keep_constant_dims_usable() -> None:
    actions = {"a": np.random.default_rng(0).normal(size=(5, 7))}
    constant = np.ones((5, 3))
    stats = fit_window_statistics(actions, [constant], (6,))
    assert stats.state_dim == 3 and stats.state_std.tolist() == [1.0, 1.0, 1.0]  # no division by zero
    assert fit_window_statistics(actions, [], (6,)).state_dim == 0
    with pytest.raises(RemixError, match="state arrays contain NaN/inf; clean the stores"):
        fit_window_statistics(actions, [np.full((5, 3), np.nan)], (6,))

