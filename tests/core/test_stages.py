"""The stages of run_weights one by one: run directory, data, reference, DRO, outputs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from rich.console import Console

from remix.common.errors import ConfigError
from remix.core.distributed import DistInfo
from remix.core.model import OptimConfig
from remix.core.run import (
    DRO_STATE,
    REFERENCE_RESULT,
    RUN_SETTINGS_FILE,
    ActionSettings,
    DataSettings,
    ModelSettings,
    WeightsSettings,
    data_stage,
    dro_stage,
    output_stage,
    prepare_run_dir,
    reference_stage,
)
from remix.core.train import ReferenceConfig, StageConfig
from remix.data.synthetic import SyntheticDomain, make_synthetic_dataset

CPU = DistInfo(rank=0, world_size=1, device=torch.device("cpu"))
QUIET = Console(quiet=True)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    domains = [
        SyntheticDomain("clean", num_episodes=8, episode_length=8),
        SyntheticDomain("random", num_episodes=8, episode_length=8, pure_noise=True),
    ]
    return make_synthetic_dataset(tmp_path_factory.mktemp("stage-data"), domains, seed=0)


def settings(out: Path, stores: list[Path]) -> WeightsSettings:
    return WeightsSettings(
        out=out,
        data=DataSettings(paths=tuple(str(p) for p in stores), val_fraction=0.25),
        actions=ActionSettings(n_bins=8),
        model=ModelSettings(n_obs=1, hidden_dims=(32,), state_hidden=16),
        reference=ReferenceConfig(
            stage=StageConfig(
                steps=40, batch_size=16, log_every=10, optim=OptimConfig(lr=1e-3, warmup_steps=5)
            ),
            eval_every=10,
            eval_samples=16,
            stop_when_overfit=False,
        ),
        dro_checkpoint_every=10,
        device="cpu",
    )


def test_run_directory_stage(tmp_path: Path, stores: list[Path]) -> None:
    s = settings(tmp_path / "run", stores)
    assert prepare_run_dir(s, CPU) is False
    assert (s.out / "plots").is_dir() and (s.out / RUN_SETTINGS_FILE).exists()
    with pytest.raises(ConfigError, match="interrupted run"):  # started, not finished
        prepare_run_dir(s, CPU)
    (s.out / "dro" / "state.pt").write_text("stale")
    assert prepare_run_dir(replace(s, overwrite=True), CPU) is False
    assert not (s.out / "dro" / "state.pt").exists()  # overwrite removes the old checkpoints
    assert prepare_run_dir(replace(s, resume=True), CPU) is True
    (s.out / "weights.json").write_text("{}")
    with pytest.raises(ConfigError, match="finished run"):
        prepare_run_dir(replace(s, resume=True), CPU)


def test_data_reference_dro_and_output_stages(tmp_path: Path, stores: list[Path]) -> None:
    s = settings(tmp_path / "run", stores)
    prepare_run_dir(s, CPU)
    run = data_stage(s, CPU, QUIET)
    assert run.names == ["clean", "random"] and sum(run.sizes.values()) == pytest.approx(1.0)
    assert run.train_tensors is not None and len(run.train_tensors["bins"]) == len(run.data.train)
    assert run.policy_config.state_dim == 7 and run.policy_config.n_bins == 8
    assert run.data.marginal_nll["random"] > run.data.marginal_nll["clean"]  # noise has the wider marginal
    assert (s.out / "normalization.json").exists()

    reference = reference_stage(s, run, CPU, QUIET)
    assert reference.model is not None and not reference.model.training
    info = json.loads((s.out / REFERENCE_RESULT).read_text())
    assert info["steps_run"] == 40 and info["step"] in (10, 20, 30, 40)
    assert set(info["unlearnable"]) == set(reference.unlearnable)
    rows = (s.out / "reference_eval.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 4  # header + train/val rows at 4 evaluations
    again = reference_stage(s, run, CPU, QUIET)  # a finished stage is loaded, not trained again
    assert again.info == reference.info
    for a, b in zip(again.model.parameters(), reference.model.parameters()):
        assert torch.equal(a, b)

    dro = dro_stage(s, run, reference, CPU)
    assert dro.steps == 40 and dro.cached_reference and dro.features == "off"
    assert sum(dro.result.weights.values()) == pytest.approx(1.0)
    assert (s.out / DRO_STATE).exists()  # the last checkpoint, until the outputs are written

    output_stage(s, run, reference, dro, QUIET)
    saved = json.loads((s.out / "weights.json").read_text())
    assert saved["weights"] == dro.result.weights and saved["reference"]["step"] == info["step"]
    assert saved["dro"]["unlearnable"] == "zero" and saved["dro"]["steps"] == 40
    assert (s.out / "mixture.json").exists() and (s.out / "plots" / "weights.png").exists()
    assert not (s.out / DRO_STATE).exists()


def test_plain_dro_reference_stage_has_no_model(tmp_path: Path, stores: list[Path]) -> None:
    s = replace(settings(tmp_path / "run", stores), plain_dro=True)
    outcome = reference_stage(s, None, CPU, QUIET)  # type: ignore[arg-type]  # needs no data
    assert outcome.model is None and outcome.info["steps_run"] == 0 and outcome.unlearnable == ()
