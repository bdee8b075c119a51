"""remix-weights and remix-train run on imported stores (robomimic MH by tier, Bridge RLDS by split)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remix.data.importers.options import build_options
from remix.data.importers.run import import_dataset

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
BIN = Path(sys.executable).parent


def run(tool: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"{tool} {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_remix_weights_on_imported_robomimic(tmp_path):
    options = build_options({"image_size": [32, 32]}, preset="robomimic_mh")
    import_dataset(FIXTURES / "robomimic" / "square_mh_mini.hdf5", tmp_path / "mh.zarr", options, progress=False)
    run("remix-weights", "data.paths=[mh.zarr]", "data.domain_key=quality", "out=w", "reference.steps=20",
        "reference.eval_every=10", "batch_size=16", "log_every=10", "model.cameras=[agentview]", "model.encoder=tiny",
        cwd=tmp_path)
    weights = json.loads((tmp_path / "w" / "weights.json").read_text())
    assert list(weights["weights"]) == ["better", "okay", "worse"]
    assert sum(weights["weights"].values()) == pytest.approx(1.0)


@pytest.mark.slow
def test_remix_train_on_imported_rlds(tmp_path):
    options = build_options({"image_size": [32, 32], "domain": {"from": "split", "map": None}}, preset="bridge")
    import_dataset(FIXTURES / "rlds" / "bridge_mini" / "1.0.0", tmp_path / "b.zarr", options, progress=False)
    run("remix-train", "runs/p", "data.paths=[b.zarr]", "model.encoder=tiny", "model.image_size=[32,32]",
        "model.cameras=[cam0]", "data.domain_key=split", "train.steps=2", "train.batch_size=4", "train.num_workers=0",
        "train.val_every=2", "train.save_every=2", "train.progress=false", cwd=tmp_path)
    assert (tmp_path / "runs/p/checkpoints/step_00000002/model.safetensors").exists()
