"""Training end to end on tiny synthetic data: overfitting, checkpoints, resume, and the CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from remix.common.errors import ConfigError
from remix.data import EpisodeStore
from remix.data.synthetic import SyntheticDomain, make_synthetic_store
from remix.policy import load_policy
from remix.policy.augment import AugmentConfig
from remix.policy.cli import train_main
from remix.policy.config import ModelConfig
from remix.policy.data import MixtureConfig
from remix.policy.train import (
    TrainConfig,
    batches,
    build_run,
    make_loader,
    restore_run,
    save_run,
    start_output,
    train,
    train_step,
    validate_run,
)
from tests.policy.conftest import FakeObservation

MODEL = ModelConfig(encoder="tiny", image_size=(16, 16), horizon=2, embed_dim=64, hidden_dim=256, num_blocks=2,
                    num_train_timesteps=20, dropout=0.0)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "demo.zarr"
    make_synthetic_store(path, SyntheticDomain("demo", num_episodes=2, episode_length=6, image_size=16, action_noise=0.0))
    return path


def _fast(**overrides) -> TrainConfig:
    values = dict(steps=150, batch_size=12, lr=3e-3, warmup_steps=10, ema_decay=0.99, log_every=25, val_every=1000,
                  save_every=1000, val_batches=1, progress=False, augment=AugmentConfig(enabled=False),
                  num_workers=0)
    return TrainConfig(**{**values, **overrides})


def test_overfits_a_tiny_dataset_and_acts_like_the_demos(store, tmp_path):
    checkpoint = train(MODEL, MixtureConfig(paths=(str(store),), val_fraction=0.0), _fast(), tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[0] > 0.1 and losses[-1] < 0.01, losses
    assert (tmp_path / "run" / "losses.png").stat().st_size > 0

    demos = EpisodeStore.open(store)
    policy = load_policy(checkpoint, inference_steps=10, exec_horizon=1)
    errors, scale = [], []
    for episode in range(demos.num_episodes):
        data = demos.read_episode(episode)
        frames, actions = data["images/cam0"], data["action"]
        policy.reset(FakeObservation({"cam0": frames[-1]}, data["state"][-1]))
        for step in range(len(actions)):
            predicted = policy.act(FakeObservation({"cam0": frames[step]}, data["state"][step]))
            errors.append(np.abs(predicted - actions[step]))
            scale.append(np.abs(actions[step]))
    errors, scale = np.stack(errors), np.stack(scale)
    assert np.all(errors.mean(0) < 0.15 * scale.mean(0) + 1e-3), (errors.mean(0), scale.mean(0))
    assert errors[:, 6].max() < 0.2  # the gripper command is right at every step


def test_resume_continues_exactly_like_an_uninterrupted_run(store, tmp_path):
    mixture = MixtureConfig(paths=(str(store),), val_fraction=0.0)
    config = _fast(steps=8, save_every=4, log_every=4, augment=AugmentConfig())
    straight = train(MODEL, mixture, config, tmp_path / "straight")
    short = TrainConfig(**{**config.__dict__, "steps": 4})
    train(MODEL, mixture, short, tmp_path / "resumed")
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(MODEL, mixture, short, tmp_path / "resumed")
    with pytest.raises(ConfigError, match="already at step 4"):
        train(MODEL, mixture, short, tmp_path / "resumed", resume=True)
    resumed = train(MODEL, mixture, config, tmp_path / "resumed", resume=True)
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # only the newest checkpoint keeps the (large) resume state; every checkpoint keeps its model
    root = tmp_path / "resumed" / "checkpoints"
    assert sorted(p.parent.name for p in root.glob("*/train_state.pt")) == ["step_00000008"]
    assert sorted(p.parent.name for p in root.glob("*/model.safetensors")) == ["step_00000004", "step_00000008"]


def test_validation_reports_per_domain_metrics(tmp_path):
    make_synthetic_store(tmp_path / "a.zarr", SyntheticDomain("a", num_episodes=4, episode_length=4, image_size=16))
    make_synthetic_store(tmp_path / "mine.zarr", SyntheticDomain("mine", num_episodes=3, episode_length=4, image_size=16))
    mixture = MixtureConfig(paths=(str(tmp_path / "a.zarr"),), cotrain=(str(tmp_path / "mine.zarr"),), val_fraction=0.3)
    checkpoint = train(MODEL, mixture, _fast(steps=4, val_every=4, log_every=2), tmp_path / "run")
    meta = json.loads((checkpoint / "config.json").read_text())
    assert meta["meta"]["domains"] == ["a", "mine"]
    assert meta["meta"]["weights"] == pytest.approx([0.95, 0.05])
    assert meta["normalization"]["target_domain"] == "mine"
    assert {"val_loss/a", "val_loss/mine", "val_action_mse/a"} <= set(meta["meta"]["val"])


def _run_cli(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["remix-train", *args])
    try:
        train_main()
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


def test_cli_trains_and_reports_bad_input_in_one_line(store, tmp_path, monkeypatch, capsys):
    common = [f"data.paths=[{store}]", "data.val_fraction=0", "model.encoder=tiny", "model.image_size=[16,16]",
              "train.steps=2", "train.batch_size=4", "train.num_workers=0", "train.progress=false"]
    assert _run_cli(monkeypatch, str(tmp_path / "run"), *common) == 0
    assert "final checkpoint" in capsys.readouterr().out
    assert (tmp_path / "run" / "checkpoints" / "step_00000002" / "model.safetensors").exists()
    assert _run_cli(monkeypatch, str(tmp_path / "run"), *common, "train.steps=1") == 1
    assert "already holds a training run" in capsys.readouterr().err
    assert _run_cli(monkeypatch, str(tmp_path / "run"), *common, "train.steps=1", "overwrite=true",
                    "model.encoder=resnet99") == 1  # a bad config must not cost the old run
    assert (tmp_path / "run" / "checkpoints" / "step_00000002" / "model.safetensors").exists()
    capsys.readouterr()
    assert _run_cli(monkeypatch, str(tmp_path / "run"), *common, "train.steps=1", "overwrite=true") == 0
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step_00000001"]

    assert _run_cli(monkeypatch, str(tmp_path / "bad"), *common, "model.encoder=resnet99") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("error:") and "resnet99" in err[0]
    assert _run_cli(monkeypatch, str(tmp_path / "bad"), f"data.paths=[{tmp_path / 'missing.zarr'}]") == 1
    assert capsys.readouterr().err.startswith("error:")
    assert _run_cli(monkeypatch, str(tmp_path / "bad"), *common, "train.lr=-1") == 1
    assert "train.lr" in capsys.readouterr().err
    assert _run_cli(monkeypatch, str(tmp_path / "bad"), *common, "train.colour=red") != 0  # unknown key


def test_cli_model_widths_given_are_checked_against_the_stores(store, tmp_path, monkeypatch, capsys):
    """model.action_dim / model.state_dim default to the stores' widths; a value given is a check, and a
    mismatch is one line naming the store and both widths, before anything is written."""
    common = [f"data.paths=[{store}]", "data.val_fraction=0", "model.encoder=tiny", "model.image_size=[16,16]",
              "train.steps=1", "train.batch_size=4", "train.num_workers=0", "train.progress=false"]
    for given, message in (("model.action_dim=5", "has 7-d actions but model.action_dim=5"),
                           ("model.state_dim=3", "has 7-d states but model.state_dim=3")):
        assert _run_cli(monkeypatch, str(tmp_path / "run"), *common, "model.use_state=true", given) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(store) in err[0] and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_cli_out_that_is_a_file_or_under_one_is_a_one_line_error(store, tmp_path, monkeypatch, capsys):
    """remix-train checks out= with the shared prepare_out_dir, like remix-weights (was a FileExistsError)."""
    common = [f"data.paths=[{store}]", "data.val_fraction=0", "model.encoder=tiny", "model.image_size=[16,16]",
              "train.steps=1", "train.batch_size=4", "train.num_workers=0", "train.progress=false"]
    (tmp_path / "notes.txt").write_text("not a run directory")
    for out, message in (("notes.txt", "is a file; give a directory"), ("notes.txt/run", "cannot create out=")):
        assert _run_cli(monkeypatch, str(tmp_path / out), *common) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert (tmp_path / "notes.txt").read_text() == "not a run directory"


@pytest.mark.slow
def test_torchrun_ddp_on_two_cpu_ranks(store, tmp_path):
    import socket
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
               "-m", "remix.policy.cli", str(tmp_path / "run"), f"data.paths=[{store}]", "data.val_fraction=0",
               "model.encoder=tiny", "model.image_size=[16,16]", "train.steps=3", "train.batch_size=8",
               "train.log_every=1", "train.num_workers=0", "train.progress=false"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("final checkpoint") == 1  # only rank 0 reports and writes
    assert (tmp_path / "run" / "checkpoints" / "step_00000003" / "model.safetensors").exists()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]


def test_an_interrupted_run_saves_where_it_stopped_and_resumes(store, tmp_path, monkeypatch):
    mixture = MixtureConfig(paths=(str(store),), val_fraction=0.0)
    config = _fast(steps=5, batch_size=4, save_every=100)
    real_clip = torch.nn.utils.clip_grad_norm_
    calls = []

    def interrupt_on_third_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", interrupt_on_third_step)
    with pytest.raises(KeyboardInterrupt):
        train(MODEL, mixture, config, tmp_path / "run")
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    saved = tmp_path / "run" / "checkpoints" / "step_00000002"
    assert json.loads((saved / "config.json").read_text())["meta"]["interrupted"] is True
    assert train(MODEL, mixture, config, tmp_path / "run", resume=True).name == "step_00000005"


def test_proprio_models_train_and_act(store, tmp_path):
    model = ModelConfig(**{**MODEL.__dict__, "use_state": True})
    checkpoint = train(model, MixtureConfig(paths=(str(store),), val_fraction=0.0), _fast(steps=2), tmp_path / "run")
    policy = load_policy(checkpoint)
    data = EpisodeStore.open(store).read_episode(0)
    policy.reset(FakeObservation({"cam0": data["images/cam0"][-1]}, data["state"][-1]))
    first = policy.act(FakeObservation({"cam0": data["images/cam0"][0]}, data["state"][0]))
    policy.reset(FakeObservation({"cam0": data["images/cam0"][-1]}, data["state"][-1]))
    moved = policy.act(FakeObservation({"cam0": data["images/cam0"][0]}, data["state"][0] + 1.0))
    assert not np.allclose(first, moved), "the proprio state must reach the policy"


def test_training_stages_step_save_and_restore_exactly(store, tmp_path):
    mixture = MixtureConfig(paths=(str(store),), val_fraction=0.0)
    config = _fast(steps=5, augment=AugmentConfig(shift=0.1))
    run = build_run(MODEL, mixture, config, tmp_path / "run")
    start_output(run, replace_old_run=False)
    before = [p.detach().clone() for p in run.net.parameters()]
    stream = batches(make_loader(run), run.device)
    train_step(run, next(stream))  # the warmup's first step has learning rate 0
    per_sample = train_step(run, next(stream))
    assert run.step == 2 and per_sample.shape == (config.batch_size,) and torch.isfinite(per_sample).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, run.net.parameters())), "the steps changed the weights"
    path = save_run(run, {})
    assert path.name == "step_00000002" and run.last_checkpoint == path
    again = build_run(MODEL, mixture, config, tmp_path / "run", resume_from=path)
    restore_run(again, path)
    assert again.step == 2
    train_step(run, next(batches(make_loader(run), run.device)))
    train_step(again, next(batches(make_loader(again), again.device)))
    for a, b in zip(run.net.parameters(), again.net.parameters()):
        assert torch.equal(a, b), "a restored run takes the same next step"


def test_validation_stage_reports_the_deployed_weights(tmp_path):
    make_synthetic_store(tmp_path / "a.zarr", SyntheticDomain("a", num_episodes=4, episode_length=4, image_size=16))
    mixture = MixtureConfig(paths=(str(tmp_path / "a.zarr"),), val_fraction=0.5)
    run = build_run(MODEL, mixture, _fast(steps=2), tmp_path / "run")
    start_output(run, replace_old_run=False)
    metrics = validate_run(run)
    assert {"val_loss", "val_action_mse", "val_loss/a"} <= set(metrics)
    assert json.loads(run.metrics_path.read_text().splitlines()[-1])["val_loss"] == pytest.approx(metrics["val_loss"])


def test_any_action_size_trains_and_acts(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "four.zarr"
    store = EpisodeStore.create(path, fps=10, action_names=("x", "y", "z", "gripper"), gripper_dims=(3,),
                                cameras={"cam0": (16, 16)}, state_names=("x", "y", "z", "gripper", "extra"))
    for _ in range(2):
        action = np.concatenate([rng.normal(0, 0.01, (6, 3)), rng.integers(0, 2, (6, 1))], axis=1).astype(np.float32)
        store.add_episode({"action": action, "state": rng.normal(size=(6, 5)).astype(np.float32),
                           "images/cam0": rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)})
    model = ModelConfig(**{**MODEL.__dict__, "action_dim": 4, "use_state": True, "state_dim": 5})
    checkpoint = train(model, MixtureConfig(paths=(str(path),), val_fraction=0.0), _fast(steps=2), tmp_path / "run")
    policy = load_policy(checkpoint)
    frame = {"cam0": np.zeros((16, 16, 3), np.uint8)}
    policy.reset(FakeObservation(frame, np.zeros(5, np.float32)))
    action = policy.act(FakeObservation(frame, np.zeros(5, np.float32)))
    assert action.shape == (4,) and action[3] in (0.0, 1.0)
    wrong_state = ModelConfig(**{**model.__dict__, "state_dim": 7})
    with pytest.raises(ConfigError, match="model.state_dim=7"):
        train(wrong_state, MixtureConfig(paths=(str(path),), val_fraction=0.0), _fast(steps=2), tmp_path / "bad")
