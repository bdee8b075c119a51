"""remix-train's policy presets compose into valid typed settings with the numbers they document."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

import remix.policy.cli  # noqa: F401 - registers train_schema, as the console script does
from remix.common.config import build
from remix.policy.cli import TrainCommand


def _command(preset: str) -> TrainCommand:
    with initialize_config_module(config_module="remix.configs", version_base=None):
        cfg = compose("train", overrides=[f"recipe={preset}", "out=/tmp/x", "data.cotrain=[d.zarr]"])
    return build(TrainCommand, cfg)


def test_cpu_preset_is_the_sim_measured_design() -> None:
    command = _command("cpu")
    model, train = command.model, command.train
    assert (model.encoder, model.norm, model.pool, model.keypoints) == ("small", "group", "spatial_softmax", 32)
    assert tuple(model.image_size) == (64, 64) and model.n_obs == 1 and model.horizon == 8 and not model.use_state
    assert train.augment.shift == 0.0 and train.device == "cpu" and command.data.goal_relabel > 0


def test_paper_preset_is_the_papers_gpu_configuration() -> None:
    command = _command("paper")
    assert (command.model.encoder, command.model.pool, command.model.n_obs) == ("resnet50", "avg", 2)
    assert tuple(command.model.image_size) == (224, 224)
    assert command.train.steps == 400_000 and command.train.lr == pytest.approx(2e-4) and command.train.device == "cuda"
