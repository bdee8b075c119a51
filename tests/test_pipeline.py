"""The whole user journey through the installed console scripts, on synthetic data and the sim robot:
remix-data -> remix-weights -> remix-subset -> remix-collect -> remix-train -> remix-eval -> remix-report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remix.data import EpisodeStore

BIN = Path(sys.executable).parent
DOMAINS = ("clean", "noisy", "random", "centimetres")


def run(tool: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    result = subprocess.run([str(BIN / tool), *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"{tool} {' '.join(args)} failed:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_weights_subset_demos_training_eval_and_report(tmp_path):
    run("remix-data", "synthetic", "data", "synthetic.image_size=32", "synthetic.episode_length=12", cwd=tmp_path)
    stores = [f"data/{name}.zarr" for name in DOMAINS]
    run(
        "remix-weights", f"data.paths=[{','.join(stores)}]", "out=runs/weights", "reference.steps=300",
        "reference.eval_every=50", "batch_size=64", "log_every=100", cwd=tmp_path,
    )
    weights = json.loads((tmp_path / "runs/weights/weights.json").read_text())
    assert list(weights["weights"]) == list(DOMAINS)
    assert sum(weights["weights"].values()) == pytest.approx(1.0)
    assert 0 < weights["reference"]["step"] <= 300 and weights["reference"]["reason"]

    elsewhere = tmp_path / "elsewhere"  # weights.json must name its stores so any working directory works
    elsewhere.mkdir()
    run("remix-subset", str(tmp_path / "runs/weights/weights.json"), "fraction=0.5", f"out={tmp_path / 'subsets/half'}",
        cwd=elsewhere)
    subset = json.loads((tmp_path / "subsets/half/subset.json").read_text())
    kept_steps = sum(EpisodeStore.open(path).num_steps for path in subset["stores"].values())
    total_steps = sum(EpisodeStore.open(tmp_path / s).num_steps for s in stores)
    assert kept_steps == subset["kept_steps"]
    assert 0.45 * total_steps <= kept_steps <= 0.55 * total_steps

    run("remix-collect", "task=lift_red", "robot=sim", "robot.cameras.cam0=[32,32]", "teleop=sim_expert",
        "operator=scripted", "num_demos=2", "out=demos/sim.zarr", "progress=false", cwd=tmp_path)
    demos = EpisodeStore.open(tmp_path / "demos/sim.zarr")
    assert demos.num_episodes == 2 and set(demos.field("task")) == {"lift_red"}
    # the demos perform the task they are labelled with (the sim's configured task was put_red_in_green):
    # a lift takes 7-9 steps plus the final frame; replayed from its scene seed each one lifts the cube
    assert demos.episode_lengths.max() <= 11
    from robots.sim import SimRobot

    with SimRobot(task="lift_red", cameras={"cam0": (32, 32)}) as sim:
        for index in range(2):
            sim.reset(seed=int(demos.field("seed")[index]))
            for action in demos.read_episode(index)["action"]:
                sim.send_action(action)
            assert sim.check_success() and sim.object_position("red")[2] > sim.task.lift_height

    run(
        "remix-train", "runs/policy", f"data.paths=[{','.join(stores)}]", "data.weights=runs/weights",
        "data.cotrain=[demos/sim.zarr]", "model.encoder=tiny", "model.image_size=[32,32]", "train.steps=20",
        "train.batch_size=8", "train.num_workers=0", "train.val_every=20", "train.save_every=20", "train.progress=false",
        cwd=tmp_path,
    )
    checkpoint = tmp_path / "runs/policy/checkpoints/step_00000020"
    assert (checkpoint / "model.safetensors").exists()

    out = run(
        "remix-eval", "robot=sim", "robot.cameras.cam0=[32,32]", "tasks=[lift_red]",
        f"policies={{trained:{checkpoint},expert:'scripted:expert'}}", "trials=2", "operator=scripted",
        "out=evals/trials.sqlite", "progress=false", "time_limit_s=10", cwd=tmp_path,
    )
    assert "2/2 (100%" in out  # the scripted expert solves the sim task; the sim labels every trial itself
    from eval.trial_log import TrialLog

    with TrialLog.open(tmp_path / "evals/trials.sqlite") as log:
        rows = log.trials()
    by_trial = {(r.policy, r.trial_index): (r.seed, r.goal_image_path) for r in rows}
    assert by_trial[("trained", 0)] == by_trial[("expert", 0)]  # same scene and goal for every policy
    assert by_trial[("expert", 0)] != by_trial[("expert", 1)]  # each trial: its own scene and that scene's goal
    report = run("remix-report", "evals/trials.sqlite", cwd=tmp_path)
    assert "| lift_red |" in report and (tmp_path / "evals/report/success_summary.png").exists()
