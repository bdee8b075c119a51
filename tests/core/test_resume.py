"""A remix-weights run killed with SIGKILL in the reference stage, resumed, killed again in the DRO
stage and resumed again ends with exactly the weights of an uninterrupted run with the same seed.
The two killed runs are real `python -m remix.core.cli` processes; the last resume runs in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module
from rich.console import Console

from remix.common.errors import ConfigError
from remix.core.cli import settings_from_config
from remix.core.run import DRO_STATE, REFERENCE_STATE, _settings_fingerprint, run_weights
from remix.data.synthetic import SyntheticDomain, make_synthetic_dataset

DOMAINS = (
    SyntheticDomain("clean", num_episodes=8, episode_length=10),
    SyntheticDomain("random", num_episodes=8, episode_length=10, pure_noise=True),
)


def overrides(out: Path, paths: list[Path]) -> list[str]:
    return [
        f"out={out}",
        f"data.paths=[{','.join(str(p) for p in paths)}]",
        "data.val_fraction=0.25",
        "device=cpu",
        "batch_size=32",
        "actions.n_bins=8",
        "model.n_obs=1",
        "model.hidden_dims=[32]",
        "model.state_hidden=16",
        "model.dropout=0.2",  # dropout draws must be resumed too
        "optim.warmup_steps=10",
        "reference.steps=300",
        "reference.eval_every=25",
        "reference.eval_samples=32",
        "reference.stop_when_overfit=false",
        "dro.checkpoint_every=25",
    ]


def start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "remix.core.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )


def kill_once_saved(process: subprocess.Popen, state: Path, min_step: int, timeout: float = 120.0) -> int:
    """SIGKILL the run as soon as `state` holds a checkpoint at or past `min_step`; returns that step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-2000:]
        if state.exists():
            try:
                step = int(torch.load(state, weights_only=False)["step"])
            except Exception:  # noqa: BLE001 - the rename is atomic, but be safe against a torn read
                step = -1
            if step >= min_step:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return step
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"no checkpoint at {state} within {timeout} s")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_synthetic_dataset(tmp_path_factory.mktemp("resume-data"), DOMAINS, seed=0)


@pytest.mark.slow
def test_sigkill_in_reference_and_dro_stages_resumes_to_the_same_weights(tmp_path: Path, stores: list[Path]) -> None:
    torch.set_num_threads(1)
    with initialize_config_module(config_module="remix.configs", version_base=None):
        settings = settings_from_config(compose("weights", overrides=overrides(tmp_path / "whole", stores)))
    expected = run_weights(settings).weights

    out = tmp_path / "killed"
    args = overrides(out, stores)
    killed_at = kill_once_saved(start(args), out / REFERENCE_STATE, min_step=50)
    assert killed_at < 300 and not (out / "weights.json").exists()

    killed_at = kill_once_saved(start([*args, "resume=true"]), out / DRO_STATE, min_step=50)
    assert killed_at < 300 and not (out / "weights.json").exists()
    assert (out / "reference" / "result.json").exists()  # the reference stage had finished

    with pytest.raises(ConfigError, match="resume=true"):  # an interrupted run is not silently started over
        run_weights(replace(settings, out=out))
    console = Console(record=True)
    run_weights(replace(settings, out=out, resume=True), console=console)
    assert "resuming" in console.export_text()
    weights = json.loads((out / "weights.json").read_text())["weights"]
    assert weights == expected  # bit for bit
    assert not (out / DRO_STATE).exists() and not (out / REFERENCE_STATE).exists()


def test_resume_refuses_other_settings(tmp_path: Path, stores: list[Path]) -> None:
    out = tmp_path / "run"
    with initialize_config_module(config_module="remix.configs", version_base=None):
        settings = settings_from_config(compose("weights", overrides=overrides(out, stores)))
    out.mkdir()
    other = replace(settings, seed=123)  # an interrupted run with another seed
    (out / "run_settings.json").write_text(json.dumps(_settings_fingerprint(other)))
    with pytest.raises(ConfigError, match="seed: 123 -> 0"):
        run_weights(replace(settings, resume=True))
