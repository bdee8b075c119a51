"""remix-weights and remix-train run on imported stores of every source format.

robomimic MH (domains = quality tiers), Bridge RLDS (split), LeRobot v2.1 and v3.0 (one domain per store)
and a diffusion_policy replay buffer. The console scripts run in this process (argv patched, like
tests/policy/test_train.py) so torch and the learning stack are imported once, not once per run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from remix.data.importers.options import build_options
from remix.data.importers.run import import_dataset

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LEROBOT = {"action": "action", "state": "observation.state", "image_size": [32, 32]}
REPLAY = {"action": "action", "state": ["state", "keypoint"], "cameras": {"cam0": "img"}, "fps": 10, "image_size": [32, 32]}
TRAIN = ("model.encoder=tiny", "model.image_size=[32,32]", "train.steps=2", "train.batch_size=4", "train.num_workers=0",
         "train.val_every=2", "train.save_every=2", "train.progress=false")
WEIGHTS = ("reference.steps=20", "reference.eval_every=10", "batch_size=16", "log_every=10", "model.encoder=tiny")


def run(tool: str, *args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a console script's entry point in-process in `cwd`; fail with its stderr on a non-zero exit."""
    if tool == "remix-weights":
        from remix.core.cli import weights_main as main
    else:
        from remix.policy.cli import train_main as main
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [tool, *args])
    try:
        main()
    except SystemExit as exit:
        assert not exit.code, f"{tool} {' '.join(args)} exited with {exit.code}"


def import_lerobot(version: str, out: Path) -> None:
    cameras = {"top": "observation.images.top"} | ({"wrist": "observation.images.wrist"} if version == "v30" else {})
    import_dataset(FIXTURES / "lerobot" / version, out, build_options({**LEROBOT, "cameras": cameras}), progress=False)


@pytest.mark.slow
def test_remix_weights_on_imported_robomimic(tmp_path, monkeypatch):
    options = build_options({"image_size": [32, 32]}, preset="robomimic_mh")
    import_dataset(FIXTURES / "robomimic" / "square_mh_mini.hdf5", tmp_path / "mh.zarr", options, progress=False)
    run("remix-weights", "data.paths=[mh.zarr]", "data.domain_key=quality", "out=w", "model.cameras=[agentview]",
        *WEIGHTS, cwd=tmp_path, monkeypatch=monkeypatch)
    weights = json.loads((tmp_path / "w" / "weights.json").read_text())
    assert list(weights["weights"]) == ["better", "okay", "worse"]
    assert sum(weights["weights"].values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_remix_train_on_imported_rlds(tmp_path, monkeypatch):
    options = build_options({"image_size": [32, 32], "domain": {"from": "split", "map": None}}, preset="bridge")
    import_dataset(FIXTURES / "rlds" / "bridge_mini" / "1.0.0", tmp_path / "b.zarr", options, progress=False)
    run("remix-train", "runs/p", "data.paths=[b.zarr]", "model.cameras=[cam0]", "data.domain_key=split", *TRAIN,
        cwd=tmp_path, monkeypatch=monkeypatch)
    assert (tmp_path / "runs/p/checkpoints/step_00000002/model.safetensors").exists()


@pytest.mark.slow
def test_remix_weights_on_imported_lerobot(tmp_path, monkeypatch):
    """Each LeRobot fixture has 2 episodes: one store per codebase version is a domain with 1 train + 1 val episode."""
    import_lerobot("v21", tmp_path / "v21.zarr")
    import_lerobot("v30", tmp_path / "v30.zarr")
    run("remix-weights", "data.paths=[v21.zarr,v30.zarr]", "out=w", "model.cameras=[top]", *WEIGHTS,
        cwd=tmp_path, monkeypatch=monkeypatch)
    weights = json.loads((tmp_path / "w" / "weights.json").read_text())
    assert list(weights["weights"]) == ["v21", "v30"]
    assert sum(weights["weights"].values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_remix_weights_when_no_domain_has_validation_episodes(tmp_path, monkeypatch, capsys):
    """Split by task, the v2.1 fixture is two 1-episode domains: nothing to early-stop the reference on.

    remix-weights says so in one line before it marks `out` as a run to resume (so the suggested fix
    can be rerun as is), and plain Group DRO, which trains no reference, runs on the same domains.
    """
    import_lerobot("v21", tmp_path / "l.zarr")
    args = ("data.paths=[l.zarr]", "data.domain_key=task", "out=w", "model.cameras=[top]", *WEIGHTS)
    from remix.core.cli import weights_main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["remix-weights", *args])
    with pytest.raises(SystemExit) as exit:
        weights_main()
    assert exit.value.code == 1
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "no domain has a validation episode" in message
    assert "episodes per domain: [1]" in message and "2+ episodes" in message and "dro.plain=true" in message
    assert not (tmp_path / "w" / "run_settings.json").exists()
    run("remix-weights", *args, "dro.plain=true", "dro.steps=4", cwd=tmp_path, monkeypatch=monkeypatch)
    weights = json.loads((tmp_path / "w" / "weights.json").read_text())
    assert list(weights["weights"]) == ["pick the cube", "open the drawer"]


@pytest.mark.slow
@pytest.mark.parametrize("version", ["v21", "v30"])
def test_remix_train_on_imported_lerobot(tmp_path, monkeypatch, version):
    """No model.action_dim / model.state_dim: the 6-d actions and states are read from the store and stored
    with the checkpoint."""
    import_lerobot(version, tmp_path / "l.zarr")
    cameras = "[top]" if version == "v21" else "[top,wrist]"  # v3.0: an mp4 camera and a PNG image feature
    run("remix-train", "runs/p", "data.paths=[l.zarr]", f"model.cameras={cameras}", "model.use_state=true", *TRAIN,
        cwd=tmp_path, monkeypatch=monkeypatch)
    checkpoint = tmp_path / "runs/p/checkpoints/step_00000002"
    assert (checkpoint / "model.safetensors").exists()
    model = json.loads((checkpoint / "config.json").read_text())["model"]
    assert (model["action_dim"], model["state_dim"]) == (6, 6)


@pytest.mark.slow
def test_remix_weights_on_imported_replay_buffer(tmp_path, monkeypatch):
    """Push-T style buffer (absolute 2-d actions, no per-episode fields): two domains = the buffer at 10 Hz and,
    strided, at 5 Hz."""
    buffer = FIXTURES / "replay_buffer" / "pusht_mini.zarr"
    import_dataset(buffer, tmp_path / "full.zarr", build_options(REPLAY), progress=False)
    import_dataset(buffer, tmp_path / "half.zarr", build_options({**REPLAY, "stride": 2, "action_kind": "absolute"}),
                   progress=False)
    run("remix-weights", "data.paths=[full.zarr,half.zarr]", "out=w", "model.cameras=[cam0]", *WEIGHTS,
        cwd=tmp_path, monkeypatch=monkeypatch)
    assert list(json.loads((tmp_path / "w" / "weights.json").read_text())["weights"]) == ["full", "half"]


@pytest.mark.slow
def test_remix_train_on_imported_replay_buffer(tmp_path, monkeypatch):
    import_dataset(FIXTURES / "replay_buffer" / "pusht_mini.zarr", tmp_path / "b.zarr", build_options(REPLAY), progress=False)
    run("remix-train", "runs/p", "data.paths=[b.zarr]", "model.cameras=[cam0]", *TRAIN,
        cwd=tmp_path, monkeypatch=monkeypatch)
    checkpoint = tmp_path / "runs/p/checkpoints/step_00000002"
    assert (checkpoint / "model.safetensors").exists()
    assert json.loads((checkpoint / "config.json").read_text())["model"]["action_dim"] == 2  # read from the store
