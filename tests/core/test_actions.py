"""Per-domain normalization and binning: round trips and edge cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from remix.common.errors import ConfigError, RemixError
from remix.core.actions import ActionBinner, ActionNormalizer, gaussian_bin_range


def _domains() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    metres = rng.normal(0.01, 0.02, size=(500, 3))
    metres[:, 2] = (rng.uniform(size=500) > 0.5).astype(float)  # gripper, 0/1
    cm = metres.copy()
    cm[:, :2] *= 100.0
    const = metres.copy()
    const[:, 1] = 0.3  # zero-variance dimension
    return {"m": metres, "cm": cm, "const": const}


def test_gaussian_normalization_aligns_domains_and_round_trips() -> None:
    data = _domains()
    norm = ActionNormalizer.fit(data, "gaussian", gripper_dims=(2,))
    for name, a in data.items():
        z = norm.normalize(a, name)
        assert np.all(np.isfinite(z))
        np.testing.assert_allclose(norm.denormalize(z, name), a, atol=1e-5)
        np.testing.assert_array_equal(z[:, 2], a[:, 2])  # gripper left raw
    np.testing.assert_allclose(
        norm.normalize(data["m"], "m")[:, :2], norm.normalize(data["cm"], "cm")[:, :2], atol=1e-4
    )
    np.testing.assert_allclose(norm.normalize(data["m"], "m")[:, 0].std(), 1.0, atol=1e-3)
    np.testing.assert_allclose(
        norm.normalize(data["const"], "const")[:, 1], 0.0, atol=1e-6
    )  # no divide by zero


def test_bounds_normalization_maps_range_to_unit_interval() -> None:
    data = _domains()
    norm = ActionNormalizer.fit(data, "bounds", gripper_dims=(2,), normalize_gripper=True)
    z = norm.normalize(data["cm"], "cm")
    np.testing.assert_allclose(z.min(0), -1.0, atol=1e-6)
    np.testing.assert_allclose(z.max(0), 1.0, atol=1e-6)
    np.testing.assert_allclose(norm.normalize(data["const"], "const")[:, 1], 0.0, atol=1e-6)


def test_normalizer_saves_and_loads_through_json() -> None:
    norm = ActionNormalizer.fit(_domains(), "gaussian", gripper_dims=(2,))
    again = ActionNormalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    a = _domains()["cm"]
    np.testing.assert_array_equal(again.normalize(a, "cm"), norm.normalize(a, "cm"))


def test_bad_actions_are_clear_errors() -> None:
    with pytest.raises(RemixError, match="NaN"):
        ActionNormalizer.fit({"a": np.array([[0.0, np.nan]]), "b": np.zeros((2, 2))})
    with pytest.raises(RemixError, match="action dims differ"):
        ActionNormalizer.fit({"a": np.zeros((3, 2)), "b": np.zeros((3, 7))})
    with pytest.raises(RemixError, match="no actions"):
        ActionNormalizer.fit({"a": np.zeros((0, 2))})
    with pytest.raises(ConfigError):
        ActionNormalizer.fit({"a": np.zeros((3, 2))}, "minmax")
    with pytest.raises(ConfigError):
        ActionNormalizer.fit({"a": np.zeros((3, 2))}, gripper_dims=(5,))


@pytest.mark.parametrize("kind, n", [("uniform", 128), ("gaussian", 100), ("gaussian", 48), ("uniform", 2)])
def test_binning_round_trips(kind: str, n: int) -> None:
    binner = ActionBinner(kind, n)
    edges = binner.edges
    assert edges.shape == (n + 1,) and np.all(np.diff(edges) > 0)
    bins = np.arange(n)
    np.testing.assert_array_equal(binner.encode(binner.decode(bins)), bins)
    x = np.random.default_rng(1).uniform(edges[0], edges[-1], size=(1000, 7))
    assert np.abs(binner.decode(binner.encode(x)) - x).max() <= binner.max_error() + 1e-6


def test_binning_edges_and_clipping() -> None:
    uniform = ActionBinner("uniform", 4)
    np.testing.assert_allclose(uniform.edges, [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_array_equal(
        uniform.encode(np.array([-7.0, -1.0, -0.5, 0.49, 1.0, 9.0])), [0, 0, 1, 2, 3, 3]
    )
    gauss = ActionBinner("gaussian", 100)
    assert gauss.edges[-1] == pytest.approx(5.1517, abs=1e-3) == gaussian_bin_range()
    # equal-probability bins: the central bins are narrower than the outer ones
    widths = np.diff(gauss.edges)
    assert widths[50] < widths[0]
    with pytest.raises(RemixError):
        gauss.encode(np.array([np.inf]))
    with pytest.raises(ConfigError):
        ActionBinner("quantile", 10)
    with pytest.raises(ConfigError):
        ActionBinner("uniform", 1)
