"""Frozen-feature mode: the cache holds exactly what the reference's head sees, heads train on it,
and ImageNet weights are only used when they are on disk."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision

from remix.common.errors import ConfigError
from remix.core.dataset import WindowSpec, prepare_data
from remix.core.features import (
    FeatureSettings,
    ImageNetFrames,
    encode_windows,
    imagenet_weights_path,
    reference_encoder,
    resolve_mode,
)
from remix.core.model import DiscretePolicy, PolicyConfig
from remix.data.domains import discover_domains
from remix.data.synthetic import SyntheticDomain, make_synthetic_dataset

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    paths = make_synthetic_dataset(
        tmp_path_factory.mktemp("feature-data"),
        [
            SyntheticDomain("a", num_episodes=4, episode_length=6, image_size=16),
            SyntheticDomain("b", num_episodes=4, episode_length=6, image_size=16, pure_noise=True),
        ],
    )
    return prepare_data(
        discover_domains(paths, min_domains=2), WindowSpec(n_obs=1, cameras=("cam0",)), n_bins=8, val_fraction=0.25
    )


def test_reference_features_reproduce_the_reference_nll(data) -> None:
    torch.manual_seed(0)
    config = PolicyConfig(
        action_dim=7,
        n_bins=8,
        n_obs=1,
        state_dim=7,
        cameras=("cam0",),
        encoder="tiny",
        hidden_dims=(16,),
    )
    reference = DiscretePolicy(config).eval()
    reference.set_state_statistics(data.state_mean, data.state_std)
    tensors = data.train.materialize()
    cache = encode_windows(
        data.train, None, reference_encoder(reference), 5, CPU
    )  # lazy read, odd batch size
    assert not any(k.startswith("images/") or k == "goal/cam0" for k in cache)
    assert cache["features"].shape == (len(data.train), 64)
    assert torch.equal(cache["bins"], tensors["bins"]) and torch.equal(cache["index"], tensors["index"])
    head = DiscretePolicy(replace(config, cameras=(), feature_dim=64)).eval()
    missing = head.load_state_dict(reference.state_dict(), strict=False)
    assert all(k.startswith("image_encoders.") for k in missing.unexpected_keys) and not missing.missing_keys
    with torch.no_grad():
        torch.testing.assert_close(head.nll(cache), reference.nll(tensors), rtol=1e-5, atol=1e-5)


def test_imagenet_frames_encode_each_frame(data, tmp_path: Path) -> None:
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    encoder = ImageNetFrames(weights, ("cam0",), use_goal=True)
    batch = {k: v[:3] for k, v in data.train.materialize().items()}
    assert encoder(batch).shape == (3, 2 * 512)  # one history frame + the goal
    assert resolve_mode(FeatureSettings(mode="auto", weights=str(weights))) == "imagenet"


def test_imagenet_mode_needs_weights_on_disk(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_mode(FeatureSettings(mode="imagenet", weights=str(tmp_path / "none.pth")))
    if imagenet_weights_path() is None:  # nothing is downloaded: auto falls back to the reference
        assert resolve_mode(FeatureSettings(mode="auto")) == "reference"
        with pytest.raises(ConfigError, match="features.mode=reference"):
            resolve_mode(FeatureSettings(mode="imagenet"))
    with pytest.raises(ConfigError):
        FeatureSettings(mode="frozen")  # type: ignore[arg-type]


def test_run_in_frozen_feature_mode(data, tmp_path: Path) -> None:
    import json

    from remix.core.model import OptimConfig
    from remix.core.run import ActionSettings, DataSettings, ModelSettings, WeightsSettings, run_weights
    from remix.core.train import ReferenceConfig, StageConfig

    settings = WeightsSettings(
        out=tmp_path / "run",
        data=DataSettings(paths=tuple(str(d.path) for d in data.domains), val_fraction=0.25),
        actions=ActionSettings(n_bins=8),
        model=ModelSettings(
            n_obs=1, use_state=False, cameras=("cam0",), encoder="tiny", hidden_dims=(16,)
        ),
        reference=ReferenceConfig(
            stage=StageConfig(steps=20, batch_size=8, log_every=10, optim=OptimConfig(warmup_steps=2)),
            eval_every=10,
            eval_samples=8,
        ),
        features=FeatureSettings(mode="reference"),
        device="cpu",
    )
    result = run_weights(settings)
    assert sum(result.weights.values()) == pytest.approx(1.0)
    saved = json.loads((tmp_path / "run" / "weights.json").read_text())
    assert saved["dro"]["features"] == "reference" and saved["dro"]["cached_reference_nll"]
    with pytest.raises(ConfigError, match="needs images"):
        run_weights(
            replace(
                settings,
                out=tmp_path / "state",
                model=ModelSettings(cameras=()),
                features=FeatureSettings(mode="reference"),
            )
        )
