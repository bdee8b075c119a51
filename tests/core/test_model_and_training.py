"""The discrete policy (image and state encoders, masked NLL), the reference NLL cache, lazy batches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from remix.common.errors import ConfigError
from remix.core.dataset import BatchStream, WindowSpec, prepare_data
from remix.core.distributed import DistInfo
from remix.core.dro import DROConfig, GroupDRO
from remix.core.model import DiscretePolicy, ImageEncoder, OptimConfig, PolicyConfig, sequence_nll
from remix.core.train import DROTrainer, StageConfig, reference_nll_cache
from remix.data.domains import discover_domains
from remix.data.synthetic import SyntheticDomain, make_synthetic_dataset

CPU = DistInfo(0, 1, torch.device("cpu"))


def test_resnet_encoder_takes_frames_goal_and_pixel_coordinates() -> None:
    encoder = ImageEncoder(frames=3, kind="resnet18")
    assert encoder.net.conv1.in_channels == 3 * 3 + 2
    out = encoder(torch.randint(0, 255, (2, 3, 32, 32, 3), dtype=torch.uint8))
    assert out.shape == (2, 512)


def test_image_policy_logits_and_untrained_nll_is_uniform_entropy() -> None:
    config = PolicyConfig(
        action_dim=7,
        n_bins=16,
        horizon=2,
        n_obs=2,
        cameras=("cam0",),
        encoder="tiny",
        hidden_dims=(64,),
    )
    policy = DiscretePolicy(config)
    torch.nn.init.zeros_(policy.head.weight)
    torch.nn.init.zeros_(policy.head.bias)
    batch = {
        "images/cam0": torch.randint(0, 255, (4, 2, 24, 24, 3), dtype=torch.uint8),
        "goal/cam0": torch.randint(0, 255, (4, 24, 24, 3), dtype=torch.uint8),
        "bins": torch.randint(0, 16, (4, 2, 7)),
        "valid": torch.ones(4, 2, dtype=torch.bool),
    }
    assert policy(batch).shape == (4, 2, 7, 16)
    # zero head -> uniform over bins -> NLL = action_dim * log(n_bins) per step
    torch.testing.assert_close(policy.nll(batch), torch.full((4,), 7 * math.log(16)))
    assert policy.predict_bins(batch).shape == (4, 2, 7)


def test_nll_averages_over_valid_steps_only() -> None:
    logits = torch.zeros(2, 3, 1, 4)
    logits[0, 2, 0, 0] = 100.0  # a confident, wrong prediction at a padded step must not count
    batch = {
        "bins": torch.ones(2, 3, 1, dtype=torch.long),
        "valid": torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool),
    }
    torch.testing.assert_close(sequence_nll(logits, batch), torch.full((2,), math.log(4)), atol=1e-5, rtol=0)


def test_policy_config_checks() -> None:
    with pytest.raises(ConfigError, match="sees nothing"):
        PolicyConfig(action_dim=7, n_bins=8)
    with pytest.raises(ConfigError, match="image encoder"):
        PolicyConfig(action_dim=7, n_bins=8, state_dim=3, encoder="vit")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    paths = make_synthetic_dataset(
        tmp_path_factory.mktemp("train-data"),
        [
            SyntheticDomain("a", num_episodes=6, episode_length=8, image_size=16),
            SyntheticDomain("b", num_episodes=4, episode_length=8, image_size=16, pure_noise=True),
        ],
    )
    return prepare_data(
        discover_domains(paths, min_domains=2),
        WindowSpec(n_obs=2, horizon=2, cameras=("cam0",)),
        n_bins=16,
        val_fraction=0.25,
    )


def test_prepared_windows_and_lazy_stream_agree_with_memory(data) -> None:
    tensors = data.train.materialize()
    n = len(data.train)
    assert tensors["images/cam0"].shape == (n, 2, 16, 16, 3) and tensors["bins"].shape == (n, 2, 7)
    assert tensors["bins"].min() >= 0 and tensors["bins"].max() < 16
    assert torch.equal(tensors["index"], torch.arange(n))
    memory = next(iter(BatchStream(data.train, [0.5, 0.5], 8, seed=3, tensors=tensors)))
    lazy = next(iter(BatchStream(data.train, [0.5, 0.5], 8, seed=3, num_workers=0)))
    for key in memory:
        assert torch.equal(memory[key], lazy[key]), key


def test_cached_reference_nll_gives_the_same_dro_run_as_reference_forwards(data) -> None:
    tensors = data.train.materialize()
    config = PolicyConfig(
        action_dim=7,
        n_bins=16,
        horizon=2,
        n_obs=2,
        state_dim=7,
        cameras=("cam0",),
        encoder="tiny",
        hidden_dims=(32,),
    )
    torch.manual_seed(0)
    reference = DiscretePolicy(config).eval()
    cache = reference_nll_cache(reference, data.train, tensors, 16, torch.device("cpu"))
    stage = StageConfig(steps=5, batch_size=8, log_every=1, optim=OptimConfig(lr=1e-3, warmup_steps=1))
    alphas = []
    for use_cache in (False, True):
        torch.manual_seed(1)
        proxy = DiscretePolicy(config)
        dro = GroupDRO([0.6, 0.4], DROConfig(eta=1.0))
        trainer = DROTrainer(
            proxy,
            dro,
            ["a", "b"],
            stage,
            CPU,
            reference=None if use_cache else reference,
            cache=cache if use_cache else None,
        )
        trainer.run(BatchStream(data.train, [0.6, 0.4], 8, seed=5, tensors=tensors), 5)
        alphas.append(dro.alpha)
    # equal up to float32 differences between batched forwards (cache built with another batch size)
    torch.testing.assert_close(alphas[0], alphas[1], rtol=1e-5, atol=1e-7)
    assert not np.allclose(alphas[0].numpy(), [0.6, 0.4])


def test_run_directory_refuses_to_overwrite_a_finished_run(tmp_path: Path) -> None:
    from remix.core.run import WeightsSettings, run_weights

    (tmp_path / "weights.json").write_text("{}")
    with pytest.raises(ConfigError, match="overwrite=true"):
        run_weights(WeightsSettings(out=tmp_path))
