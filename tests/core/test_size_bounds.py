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
