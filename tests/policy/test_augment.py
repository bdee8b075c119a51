"""Batched augmentation: identical across history and goal, correct ops, seeded parameters."""

from __future__ import annotations

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from remix.policy.augment import AugmentConfig, apply_augmentation, draw_params, identity_params


def _batch(batch: int = 3, frames: int = 2, cams: int = 1, size: int = 24, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, cams, frames, 3, size, size), generator=generator, dtype=torch.uint8)
    goal = torch.randint(0, 256, (batch, cams, 3, size, size), generator=generator, dtype=torch.uint8)
    return images, goal


def _params(*rows):
    return torch.stack([torch.tensor(r, dtype=torch.float32) for r in rows])


def test_identity_parameters_leave_images_unchanged():
    images, goal = _batch()
    out_images, out_goal = apply_augmentation(images, goal, identity_params().expand(3, -1))
    torch.testing.assert_close(out_images, images.float(), atol=1e-3, rtol=0)
    torch.testing.assert_close(out_goal, goal.float(), atol=1e-3, rtol=0)


def test_one_parameter_set_per_sample_covers_its_history_goal_and_cameras():
    images, goal = _batch(cams=2)
    images[:, :, 1] = images[:, :, 0]
    goal[:] = images[:, :, 0]
    images[:, 1] = images[:, 0]
    goal[:, 1] = goal[:, 0]
    generator = torch.Generator().manual_seed(1)
    params = torch.stack([draw_params(AugmentConfig(crop_scale=(0.3, 0.5), hue=0.3), 1.0, generator) for _ in range(3)])
    out_images, out_goal = apply_augmentation(images, goal, params)
    for sample in range(3):
        for cam in range(2):
            assert torch.equal(out_images[sample, cam, 0], out_images[sample, cam, 1])
            assert torch.equal(out_images[sample, cam, 0], out_goal[sample, cam])
        assert torch.equal(out_images[sample, 0], out_images[sample, 1])
    assert not torch.allclose(out_images[0, 0, 0], images[0, 0, 0].float(), atol=1.0)


def test_ops_match_torchvision():
    images, goal = _batch(batch=1, frames=1)
    frame = images[0, 0, 0].float()
    bright, _ = apply_augmentation(images, goal, _params([0, 0, 1, 1, 1.3, 1, 0]))
    torch.testing.assert_close(bright[0, 0, 0], TF.adjust_brightness(frame / 255, 1.3) * 255, atol=1e-3, rtol=0)
    contrast, _ = apply_augmentation(images, goal, _params([0, 0, 1, 1, 1, 0.7, 0]))
    torch.testing.assert_close(contrast[0, 0, 0], TF.adjust_contrast(frame / 255, 0.7) * 255, atol=0.05, rtol=0)
    cropped, _ = apply_augmentation(images, goal, _params([0.25, 0.5, 0.75, 1.0, 1, 1, 0]))
    reference = TF.resized_crop(frame, top=12, left=6, height=12, width=12, size=[24, 24],
                                interpolation=v2.InterpolationMode.BILINEAR, antialias=False)
    assert (cropped[0, 0, 0] - reference).abs().mean() < 3.0  # both bilinear, sub-pixel grid differences only


def test_hue_rotation_keeps_luma_and_turns_colours():
    images, goal = _batch(batch=1, frames=1)
    images = (images.float() * 0.5 + 64).to(torch.uint8)  # mid-range colours: no clamping
    shifted, _ = apply_augmentation(images, goal, _params([0, 0, 1, 1, 1, 1, 0.1]))
    luma = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    torch.testing.assert_close((shifted[0, 0, 0] * luma).sum(0), (images[0, 0, 0].float() * luma).sum(0),
                               atol=0.5, rtol=0)
    assert (shifted[0, 0, 0] - images[0, 0, 0].float()).abs().mean() > 2.0
    full_turn, _ = apply_augmentation(images, goal, _params([0, 0, 1, 1, 1, 1, 1.0]))
    torch.testing.assert_close(full_turn, images.float(), atol=1e-2, rtol=0)


def test_drawn_parameters_follow_the_config():
    generator = torch.Generator().manual_seed(0)
    config = AugmentConfig(crop_scale=(0.5, 0.7), crop_ratio=(0.8, 1.25), brightness=0.1, contrast=0.3, hue=0.02)
    drawn = torch.stack([draw_params(config, 4 / 3, generator) for _ in range(500)])
    x0, y0, x1, y1, brightness, contrast, hue = drawn.T
    area = (x1 - x0) * (y1 - y0)
    assert area.min() >= 0.5 - 1e-6 and area.max() <= 0.7 + 1e-6
    pixel_ratio = (x1 - x0) * 4 / ((y1 - y0) * 3)
    assert pixel_ratio.min() >= 0.8 - 1e-4 and pixel_ratio.max() <= 1.25 + 1e-4
    assert x0.min() >= 0 and x1.max() <= 1 and y0.min() >= 0 and y1.max() <= 1
    assert brightness.min() >= 0.9 and brightness.max() <= 1.1 and contrast.min() >= 0.7 and hue.abs().max() <= 0.02
    assert torch.equal(draw_params(AugmentConfig(enabled=False), 1.0, generator), identity_params())
