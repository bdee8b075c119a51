"""Sizes that exhaust memory or never finish are refused up front in one line (issue 14, finding 10)."""

from __future__ import annotations

import pytest

from remix.common.errors import ConfigError, RemixError
from remix.core.actions import ActionBinner
from remix.core.run import ActionSettings, DataSettings, WeightsSettings
from remix.core.train import StageConfig


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: ActionSettings(n_bins=1_000_000_000), "actions.n_bins=1000000000 must be in 2..4096"),
        (lambda: ActionBinner(n_bins=1_000_000_000), "more than 4096 bins"),
        (lambda: StageConfig(batch_size=1_000_000_000), "batch_size=1000000000 must be in 1..65536"),
        (lambda: StageConfig(num_workers=-3), "num_workers=-3 must be >= 0"),
        (lambda: DataSettings(num_workers=-3), "data.num_workers=-3 must be >= 0"),
        (lambda: DataSettings(builtin_image_size=100_000), "data.builtin.image_size=100000 must be in 0..512"),
        (lambda: WeightsSettings(out=".", seed=-1), "seed=-1 must be in"),
    ],
)
def test_unbounded_sizes_are_config_errors(build, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_trials_and_policy_image_sizes_are_bounded() -> None:
    from eval.session import SessionSettings
    from remix.policy.config import ModelConfig

    with pytest.raises(RemixError, match="trials must be in 1..10000"):
        SessionSettings(name="s", tasks=("t",), trials=1_000_000_000)
    with pytest.raises(ConfigError, match="image_size must be"):
        ModelConfig(cameras=("cam0",), image_size=(100_000, 100_000))


def test_a_subset_that_keeps_nothing_or_cannot_be_written_is_refused(tmp_path) -> None:
    import json

    from remix.core.subset import run_subset
    from remix.data.synthetic import SyntheticDomain, make_synthetic_store

    stores = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.zarr"
        make_synthetic_store(path, SyntheticDomain(name, num_episodes=3, episode_length=5)).close()
        stores.append(path)
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"domains": ["a", "b"], "weights": {"a": 1e308, "b": 1e308}, "domain_key": None,
                                   "sources": [{"name": p.stem, "path": str(p)} for p in stores]}))
    with pytest.raises(ConfigError, match="fraction=1e-09 keeps no episode"):
        run_subset(weights, fraction=1e-9, out=tmp_path / "out")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        run_subset(weights, fraction=0.5, out=tmp_path / "afile")
    plan = run_subset(weights, fraction=0.5, out=tmp_path / "out")  # 1e308 weights: an even split, not zeros
    assert len(plan) == 2 and all(p.kept_steps > 0 for p in plan)
