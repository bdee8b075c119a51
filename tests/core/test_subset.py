"""Subsetting: water-filling totals and caps, whole seeded episodes, and the written stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from remix.common.atomic import write_json_atomic
from remix.common.errors import ConfigError, RemixError
from remix.core.subset import pick_episodes, run_subset, water_fill
from remix.data.store import EpisodeStore
from remix.data.synthetic import SyntheticDomain, make_synthetic_dataset


def test_water_fill_caps_and_redistributes() -> None:
    sizes = {"a": 100, "b": 1000, "c": 400}
    weights = {"a": 0.6, "b": 0.1, "c": 0.3}
    budget = water_fill(sizes, weights, target=600)
    # a wants 360 but holds 100; the 260 left go to b and c in ratio 1:3 (-> c 245 < 400, b 95)
    assert budget["a"] == pytest.approx(100)
    assert budget["c"] == pytest.approx(180 + 260 * 0.75)
    assert budget["b"] == pytest.approx(60 + 260 * 0.25)
    assert sum(budget.values()) == pytest.approx(600)


def test_water_fill_repeats_until_target_or_full() -> None:
    sizes = {"a": 10, "b": 20, "c": 1000}
    budget = water_fill(sizes, {"a": 0.45, "b": 0.45, "c": 0.1}, target=500)
    assert budget == pytest.approx({"a": 10, "b": 20, "c": 470})
    everything = water_fill(sizes, {"a": 1, "b": 1, "c": 1}, target=5000)
    assert everything == pytest.approx({"a": 10, "b": 20, "c": 1000})
    zero = water_fill(sizes, {"a": 1, "b": 0, "c": 0}, target=500)  # zero-weight domains get nothing
    assert zero == pytest.approx({"a": 10, "b": 0, "c": 0})


def test_pick_episodes_is_seeded_and_closest_to_budget() -> None:
    lengths = np.array([10, 20, 30, 40, 50])
    a = pick_episodes(lengths, 60, seed=1)
    assert np.array_equal(a, pick_episodes(lengths, 60, seed=1))
    assert abs(lengths[a].sum() - 60) <= lengths.max() / 2
    assert len(pick_episodes(lengths, 0, seed=1)) == 0
    assert len(pick_episodes(lengths, 10_000, seed=1)) == 5


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("subset-data")
    return make_synthetic_dataset(
        root,
        [
            SyntheticDomain("big", num_episodes=40, episode_length=10),
            SyntheticDomain("small", num_episodes=8, episode_length=10),
        ],
    )


def _weights(tmp_path: Path, stores: list[Path], weights: dict[str, float]) -> Path:
    path = tmp_path / "weights.json"
    write_json_atomic(
        path,
        {
            "domains": list(weights),
            "weights": weights,
            "size_weights": weights,
            "sources": [{"name": p.stem, "path": str(p)} for p in stores],
            "domain_key": None,
        },
    )
    return path


def test_run_subset_writes_whole_episodes_with_totals_and_caps(tmp_path: Path, stores: list[Path]) -> None:
    weights = _weights(tmp_path, stores, {"big": 0.3, "small": 0.7})
    plan = run_subset(weights, fraction=0.25, out=tmp_path / "out", seed=3)
    by_name = {p.name: p for p in plan}
    # target = 0.25 * 480 = 120 steps; small wants 84 but is capped at its 80; big gets the rest (40)
    assert by_name["small"].kept_steps == 80 and by_name["small"].budget_steps == pytest.approx(80)
    assert by_name["big"].budget_steps == pytest.approx(40) and by_name["big"].kept_steps == 40
    report = json.loads((tmp_path / "out" / "subset.json").read_text())
    assert report["kept_steps"] == 120 and report["weights"] == {"big": 0.3, "small": 0.7}
    big = EpisodeStore.open(tmp_path / "out" / "big.zarr")
    src = EpisodeStore.open(stores[0])
    assert big.num_episodes == 4 and big.fields == src.fields
    first = by_name["big"].kept_episodes[0]
    np.testing.assert_array_equal(big.read_episode(0)["action"], src.read_episode(first)["action"])
    assert not list((tmp_path / "out").glob(".partial-*"))
    # same seed -> same subset; refuses to overwrite without overwrite=true
    with pytest.raises(ConfigError, match="already holds"):
        run_subset(weights, fraction=0.25, out=tmp_path / "out", seed=3)
    again = run_subset(weights, fraction=0.25, out=tmp_path / "out", seed=3, overwrite=True)
    assert [p.kept_episodes for p in again] == [p.kept_episodes for p in plan]


def test_subset_bad_inputs(tmp_path: Path, stores: list[Path]) -> None:
    weights = _weights(tmp_path, stores, {"big": 0.5, "small": 0.5})
    with pytest.raises(ConfigError, match="fraction"):
        run_subset(weights, fraction=1.5, out=tmp_path / "o1")
    with pytest.raises(RemixError, match="no weights file"):
        run_subset(tmp_path / "missing.json", fraction=0.5, out=tmp_path / "o2")
    other = _weights(tmp_path, stores, {"big": 0.5, "elsewhere": 0.5})
    with pytest.raises(RemixError, match="no weight for domains"):
        run_subset(other, fraction=0.5, out=tmp_path / "o3")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(RemixError, match="not a valid weights.json"):
        run_subset(tmp_path / "bad.json", fraction=0.5, out=tmp_path / "o4")
