"""Closed-loop success of the goal-image-conditioned diffusion policy on the sim tasks, on a CPU budget.

For each task: record scripted-expert demos (DART noise, clean labels, 10 Hz small steps) on scene
seeds 0, 1, ...; train a policy on them with `remix.policy.train.train` for a fixed number of steps;
then on `--trials` scene seeds never used for training (100000 + i) run the expert once to get that
scene's goal image (the last frame of its successful execution, the goal definition training uses),
reset the same scene and run the policy towards that goal. Prints, per task: policy successes, the
expert's successes on the same scenes, training wall time and the thread count.

    OMP_NUM_THREADS=2 MUJOCO_GL=egl python benchmarks/policy_success.py --preset cpu30 --out runs/bench
    python benchmarks/policy_success.py --preset readme --tasks lift_red --trials 20   # quicker look

Stages are cached under --out (demo stores, checkpoints): a rerun skips what exists, so an evaluation
can be repeated without retraining; delete the folder (or pass --fresh) to start over.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch

# torchvision/diffusers (via remix.policy) before MuJoCo's EGL, see robots.sim._load_triton_before_gl
from hydra import compose, initialize_config_module

from remix.common.config import build
from remix.policy.cli import TrainCommand
from remix.policy.config import ModelConfig
from remix.policy.data import MixtureConfig
from remix.policy.inference import DiffusionPolicy
from remix.policy.train import TrainConfig, train

os.environ.setdefault("MUJOCO_GL", "egl")
from robots.sim import SimRobot  # noqa: E402
from robots.sim_scene import TASKS  # noqa: E402
from teleop.expert_demos import record_expert_demos, run_expert_episode  # noqa: E402

EVAL_SEED_BASE = 100_000
CONTROL_HZ = 10.0
STEP = 0.02  # m per control step (0.2 m/s at 10 Hz)

# The design measured here is remix-train's `recipe=cpu` preset (configs/recipe/cpu.yaml), read from it so
# the two cannot drift: a small GroupNorm conv net with 32 spatial-softmax keypoints on 64 px frames, no proprio
# state, future-frame goal relabeling, no random shift, an 8-step chunk of which 4 are executed.
PRESETS: dict[str, dict] = {
    "cpu30": {"steps": 6000, "batch_size": 64},  # ~13 CPU-min of training at 1 thread
    "readme": {"steps": 3000, "batch_size": 64},
}


@functools.cache
def preset_command() -> TrainCommand:
    """remix-train's settings under recipe=cpu, composed once."""
    with initialize_config_module(config_module="remix.configs", version_base=None):
        cfg = compose("train", overrides=["recipe=cpu", "out=unused", "data.cotrain=[unused.zarr]"])
    return build(TrainCommand, cfg)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu30")
    parser.add_argument("--tasks", nargs="+", default=sorted(TASKS), choices=sorted(TASKS))
    parser.add_argument("--demos", type=int, default=50)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--noise", type=float, default=0.3, help="DART noise, fraction of the step limit")
    parser.add_argument("--relabel", type=float, help="share of future-frame goals in training (default: the preset's)")
    parser.add_argument("--image", type=int, default=64, help="camera and model image size (square)")
    parser.add_argument("--state", action=argparse.BooleanOptionalAction, default=None,
                        help="feed the proprio state too (default: the preset's, off)")
    parser.add_argument("--shift", type=float, help="random-shift augmentation (fraction; default: the preset's)")
    parser.add_argument("--camera", nargs="+", default=["cam0"], help="sim cameras the policy sees (cam0: side, overhead)")
    parser.add_argument("--tag", default="", help="suffix of the checkpoint folder (to compare variants)")
    parser.add_argument("--horizon", type=int, help="predicted chunk length (default: the preset's)")
    parser.add_argument("--keypoints", type=int, help="spatial-softmax keypoints (default: the preset's)")
    parser.add_argument("--exec-horizon", type=int, help="chunk steps executed before re-planning (default: the policy's, 3/4 of the chunk)")
    parser.add_argument("--execution", choices=("chunk", "ensemble"), default="chunk")
    parser.add_argument("--max-steps", type=int, default=120, help="step limit of a demo and of a trial")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--out", type=Path, default=Path("runs/policy_success"))
    parser.add_argument("--fresh", action="store_true", help="re-record and retrain even if cached")
    return parser.parse_args(argv)


def make_robot(task: str, image: int, cameras: list[str] | tuple[str, ...] = ("cam0",)) -> SimRobot:
    return SimRobot(task=task, cameras={camera: (image, image) for camera in cameras}, control_mode="blocking", control_hz=CONTROL_HZ,
                    max_translation=STEP)


def model_config(args: argparse.Namespace) -> ModelConfig:
    preset = {f.name: getattr(preset_command().model, f.name) for f in fields(ModelConfig)}
    overrides = {k: v for k, v in (("horizon", args.horizon), ("keypoints", args.keypoints)) if v is not None}
    return replace(ModelConfig(**{**preset, "action_dim": 7, "state_dim": 7, **overrides}), cameras=tuple(args.camera),
                   image_size=(args.image, args.image), use_state=preset['use_state'] if args.state is None else args.state)


def train_config(args: argparse.Namespace) -> TrainConfig:
    preset, train = PRESETS[args.preset], preset_command().train
    steps = args.steps or preset["steps"]
    augment = replace(train.augment, shift=train.augment.shift if args.shift is None else args.shift)
    return replace(train, steps=steps, batch_size=args.batch_size or preset["batch_size"], log_every=100,
                   val_every=steps, save_every=steps, progress=False, augment=augment)


def collect(task: str, args: argparse.Namespace, store: Path) -> dict:
    started = time.monotonic()
    with make_robot(task, args.image, args.camera) as robot:
        report = record_expert_demos(robot, store, range(10 * args.demos), args.demos, args.max_steps,
                                     noise=args.noise, overwrite=True)
    return {"demos": report.kept, "expert_failures_in_collection": report.failed,
            "mean_length": float(np.mean(report.lengths)), "collect_s": round(time.monotonic() - started, 1)}


def evaluate(task: str, args: argparse.Namespace, checkpoint: Path) -> dict:
    policy = DiffusionPolicy.load(checkpoint, exec_horizon=args.exec_horizon, execution=args.execution)
    print(f"  {task}: executing {policy.exec_horizon} of each {policy.config.horizon}-step chunk", file=sys.stderr)
    expert_ok, policy_ok, steps_used = 0, 0, []
    started = time.monotonic()
    with make_robot(task, args.image, args.camera) as robot:
        for trial in range(args.trials):
            seed = EVAL_SEED_BASE + trial
            demo = run_expert_episode(robot, seed, args.max_steps)  # this scene's goal: the expert's success frame
            if demo is None:
                continue  # no goal for this scene: the policy's trial counts as a failure
            expert_ok += 1
            goal = robot.get_observation()
            observation = robot.reset(seed=seed)
            policy.reset(goal)
            for step in range(args.max_steps):
                robot.send_action(policy.act(observation))
                observation = robot.get_observation()
                if robot.check_success():
                    policy_ok += 1
                    steps_used.append(step + 1)
                    break
            print(f"  {task} trial {trial}: policy {policy_ok}/{trial + 1}, expert {expert_ok}/{trial + 1}",
                  file=sys.stderr, flush=True)
    return {"policy_success": policy_ok, "expert_success": expert_ok, "trials": args.trials,
            "mean_policy_steps": float(np.mean(steps_used)) if steps_used else None,
            "eval_s": round(time.monotonic() - started, 1)}


def run_task(task: str, args: argparse.Namespace) -> dict:
    root = args.out / f"{task}_{'+'.join(args.camera)}_{args.image}px"
    store = root / "demos.zarr"
    result: dict = {"task": task}
    if args.fresh or not (root / "collect.json").exists():
        (root).mkdir(parents=True, exist_ok=True)
        (root / "collect.json").write_text(json.dumps(collect(task, args, store)))
    result.update(json.loads((root / "collect.json").read_text()))
    config = train_config(args)
    run_dir = root / f"policy_{args.preset}_{config.steps}{args.tag}"
    if args.fresh or not (run_dir / "train.json").exists():
        started, cpu_started = time.monotonic(), time.process_time()
        mixture = MixtureConfig(paths=(str(store),), val_fraction=0.0, goal_relabel=preset_command().data.goal_relabel if args.relabel is None else args.relabel)
        checkpoint = train(model_config(args), mixture, config, run_dir, overwrite=True)
        (run_dir / "train.json").write_text(json.dumps({
            "checkpoint": str(checkpoint), "train_s": round(time.monotonic() - started, 1),
            "train_cpu_s": round(time.process_time() - cpu_started, 1)}))
    trained = json.loads((run_dir / "train.json").read_text())
    result.update(train_s=trained["train_s"], train_cpu_s=trained.get("train_cpu_s"), steps=config.steps,
                  batch_size=config.batch_size)
    result.update(evaluate(task, args, Path(trained["checkpoint"])))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"policy_success: preset={args.preset} threads={args.threads} image={args.image} "
          f"state={model_config(args).use_state} demos={args.demos} trials={args.trials}", flush=True)
    rows = []
    for task in args.tasks:
        row = run_task(task, args)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'task':<20} {'policy':>8} {'expert':>8} {'train wall min':>15} {'train CPU min':>14} {'steps':>6}"
          f"  threads={args.threads}")
    for row in rows:
        cpu = f"{row['train_cpu_s'] / 60:.1f}" if row.get("train_cpu_s") is not None else "-"
        print(f"{row['task']:<20} {row['policy_success']:>4}/{row['trials']:<3} {row['expert_success']:>4}/{row['trials']:<3}"
              f" {row['train_s'] / 60:>15.1f} {cpu:>14} {row['steps']:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
