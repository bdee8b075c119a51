"""The network: encoder options, how the goal enters, shapes, and ImageNet initialization."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from remix.common.errors import ConfigError
from remix.policy.config import ModelConfig
from remix.policy.model import (
    DiffusionPolicyNet,
    SpatialSoftmax,
    coordinate_grid,
    diffusion_loss,
    load_imagenet_weights,
    make_scheduler,
    sample_actions,
)

TINY = ModelConfig(encoder="tiny", image_size=(16, 16), horizon=3, hidden_dim=32, num_blocks=1, num_train_timesteps=10)


def _inputs(config: ModelConfig, batch: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    h, w = config.image_size
    images = torch.randint(0, 256, (batch, len(config.cameras), config.n_obs, 3, h, w), generator=generator,
                           dtype=torch.uint8)
    goal = torch.randint(0, 256, (batch, len(config.cameras), 3, h, w), generator=generator, dtype=torch.uint8)
    return images, goal


def test_coordinate_grid_spans_minus_one_to_one_in_x_then_y():
    grid = coordinate_grid(4, 6)
    assert grid.shape == (2, 4, 6)
    assert torch.allclose(grid[0, 0], torch.linspace(-1, 1, 6))
    assert torch.allclose(grid[1, :, 0], torch.linspace(-1, 1, 4))


@pytest.mark.parametrize("encoder,pool", [("tiny", "avg"), ("resnet18", "avg"), ("small", "spatial_softmax"),
                                         ("resnet18", "spatial_softmax")])
def test_shapes_and_goal_changes_the_condition(encoder, pool):
    config = ModelConfig(encoder=encoder, pool=pool, image_size=(64, 64), horizon=4, hidden_dim=32, num_blocks=1)
    net = DiffusionPolicyNet(config).eval()
    images, goal = _inputs(config)
    with torch.no_grad():
        condition = net.encode(images, goal)
        other_goal = net.encode(images, 255 - goal)
        eps = net(torch.zeros(2, 4, 7), torch.tensor([0, 5]), condition)
    assert condition.shape == (2, config.embed_dim * config.n_obs)
    assert eps.shape == (2, 4, 7)
    assert not torch.allclose(condition, other_goal), "the goal image must change the condition"


def test_group_norm_option_replaces_every_batch_norm():
    grouped = DiffusionPolicyNet(ModelConfig(encoder="resnet18", norm="group"))
    batched = DiffusionPolicyNet(ModelConfig(encoder="resnet18", norm="batch"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in grouped.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in grouped.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in batched.modules())
    assert grouped.encoder.trunk.conv1.in_channels == 8  # obs RGB + goal RGB + xy coordinates


def test_resnet50_is_projected_to_the_embedding_size():
    net = DiffusionPolicyNet(ModelConfig(encoder="resnet50", image_size=(32, 32), embed_dim=512))
    images, goal = _inputs(net.config, batch=1)
    with torch.no_grad():
        assert net.eval().encode(images, goal).shape == (1, 1024)


def test_proprio_extends_the_condition_and_is_required():
    config = ModelConfig(encoder="tiny", image_size=(16, 16), use_state=True, hidden_dim=32, num_blocks=1)
    net = DiffusionPolicyNet(config)
    images, goal = _inputs(config)
    assert net.encode(images, goal, torch.zeros(2, 2, 7)).shape[1] == 2 * config.embed_dim + 14
    with pytest.raises(ValueError, match="proprio"):
        net.encode(images, goal)


def test_wrong_image_size_is_rejected():
    net = DiffusionPolicyNet(TINY)
    images, goal = _inputs(ModelConfig(encoder="tiny", image_size=(20, 20)))
    with pytest.raises(ValueError, match="expects"):
        net.encode(images, goal)


def test_loss_masks_padded_steps_and_sampling_is_seeded_and_clipped():
    net = DiffusionPolicyNet(TINY).eval()  # no dropout: equal inputs give equal losses
    scheduler = make_scheduler(TINY, "ddpm")
    images, goal = _inputs(TINY)
    condition = net.encode(images, goal)
    actions = torch.zeros(2, 3, 7)
    valid = torch.tensor([[True, True, True], [True, False, False]])
    loss = diffusion_loss(net, scheduler, condition, actions, valid, torch.Generator().manual_seed(0))
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    zero_net = lambda noisy, t, c: torch.zeros_like(noisy)  # noqa: E731 - error = the noise itself
    epsilon = make_scheduler(ModelConfig(**{**TINY.__dict__, "prediction_type": "epsilon"}), "ddpm")
    masked = diffusion_loss(zero_net, epsilon, condition, actions, valid, torch.Generator().manual_seed(0))
    noise = torch.randn(actions.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(masked[1], (noise[1, 0] ** 2).mean()), "padded steps must not count"
    assert torch.allclose(masked[0], (noise[0] ** 2).mean())
    ddim = make_scheduler(TINY, "ddim")
    first = sample_actions(net, ddim, condition, 5, torch.Generator().manual_seed(3))
    second = sample_actions(net, ddim, condition, 5, torch.Generator().manual_seed(3))
    assert torch.equal(first, second)
    assert first.abs().max() <= TINY.clip_range


def test_bad_model_config_is_one_clear_error():
    with pytest.raises(ConfigError, match="encoder 'resnet99'"):
        ModelConfig(encoder="resnet99")
    with pytest.raises(ConfigError, match="unknown model config keys"):
        ModelConfig.from_dict({"encoder": "tiny", "hiden_dim": 3})
    with pytest.raises(ConfigError, match="horizon must be >= 1"):
        ModelConfig.from_dict({"horizon": 0})
    with pytest.raises(ConfigError, match="sampler"):
        make_scheduler(TINY, "euler")


def test_imagenet_weights_initialize_obs_and_goal_channels(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    net = DiffusionPolicyNet(ModelConfig(encoder="resnet18", norm="batch"))
    missing = load_imagenet_weights(net.encoder.trunk, path)
    rgb = reference.conv1.weight.detach()
    conv = net.encoder.trunk.conv1.weight.detach()
    assert torch.allclose(conv[:, 0:3], rgb / 2) and torch.allclose(conv[:, 3:6], rgb / 2)
    assert torch.count_nonzero(conv[:, 6:]) == 0
    assert torch.allclose(net.encoder.trunk.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert "fc.weight" not in missing and missing == []
    with pytest.raises(ConfigError, match="do not exist"):
        load_imagenet_weights(net.encoder.trunk, tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(ConfigError, match="cannot read"):
        load_imagenet_weights(net.encoder.trunk, tmp_path / "junk.pth")


def test_every_camera_gets_its_own_frame_embeddings():
    config = ModelConfig(encoder="tiny", cameras=("cam0", "wrist"), image_size=(16, 16), embed_dim=32, hidden_dim=32,
                         num_blocks=1)
    net = DiffusionPolicyNet(config).eval()
    images, goal = _inputs(config)
    with torch.no_grad():
        features = net.frame_features(images, goal)
        assert features.shape == (2, 2, config.n_obs, 32)
        assert net.encode(images, goal).shape == (2, 2 * config.n_obs * 32)
        swapped = net.frame_features(images.flip(1), goal.flip(1))
    torch.testing.assert_close(swapped, features.flip(1))


def test_spatial_softmax_returns_where_the_feature_peaks():
    layer = SpatialSoftmax(channels=1, keypoints=1)
    with torch.no_grad():
        layer.keypoints.weight.fill_(50.0)  # a sharp softmax over the one channel
        layer.keypoints.bias.zero_()
    features = torch.zeros(2, 1, 9, 17)
    features[0, 0, 0, 16] = 1.0  # top right
    features[1, 0, 6, 4] = 1.0  # row 6 of 0..8, column 4 of 0..16
    xy = layer(features)
    torch.testing.assert_close(xy[0], torch.tensor([1.0, -1.0]), atol=1e-3, rtol=0)
    torch.testing.assert_close(xy[1], torch.tensor([4 / 8 - 1, 6 / 4 - 1]), atol=1e-3, rtol=0)


def test_small_encoder_keeps_a_quarter_resolution_map_and_pools_to_keypoints():
    net = DiffusionPolicyNet(ModelConfig(encoder="small", pool="spatial_softmax", keypoints=16, image_size=(64, 64)))
    features = net.encoder.trunk(torch.zeros(1, 8, 64, 64))
    assert features.shape[-2:] == (16, 16)
    assert net.encoder.out_dim == 32
    with pytest.raises(ConfigError, match="pool"):
        ModelConfig(pool="max")
