"""remix-select on sim data, and the downstream check: co-train a policy on each selection, roll it out.

Data (MuJoCo tabletop, widowx profile at 10 Hz with 2 cm steps, cam0 64x64: the setting the sim policy design
was measured at, benchmarks/policy_success.py): the target task `put_red_in_green`, 25 scripted-expert demos
recorded with DART (noisy execution, clean labels); prior data from the sim's other tasks (`lift_red`,
`put_blue_in_yellow`, DART expert), a poor operator on the target task (`put_red_in_green-noisy`: expert +
noise, every attempt kept) and junk (`random_actions`: uniform random motions), plus more DART expert demos
of the target task from other scenes (`put_red_in_green`, the positive control). Selection: remix-select
(state-only proxy) with every method at one budget. Downstream (--train-steps > 0): `remix-train RUN
recipe=cpu data.subset=SEL data.cotrain=[target]` per method plus target-only, then `remix-eval` success
on the target task on the same fixed scenes (session seed 0), each trial with its own scene's goal.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/select_downstream.py --out runs/select-bench
    ... --train-steps 3000 --trials 30            # with the downstream check (~8 CPU-min per policy)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from remix.select.config import ClusterSettings, DatamilSettings, DataSettings, ProxySettings, SelectSettings
from remix.select.report import cluster_domains
from remix.select.run import run_select
from remix.select.simdata import make_sim_store

os.environ.setdefault("MUJOCO_GL", "egl")
from robots.sim import SimRobot  # noqa: E402
from teleop.expert_demos import record_expert_demos  # noqa: E402

TARGET = "put_red_in_green"
PRIOR = (("lift_red", "expert"), ("put_blue_in_yellow", "expert"), (TARGET, "noisy"), (TARGET, "random"),
         (TARGET, "expert"))
BIN = Path(sys.executable).parent


CONTROL_HZ, STEP, IMAGE = 10.0, 0.02, 64
ROBOT_ARGS = ("robot=sim", f"robot.cameras.cam0=[{IMAGE},{IMAGE}]", f"robot.control_hz={CONTROL_HZ:g}",
              f"robot.max_translation={STEP}")


def record_expert(path: Path, task: str, episodes: int, seed: int) -> None:
    """DART expert demos (noise 0.3 of the step limit), as remix-collect teleop=sim_expert teleop.dart=0.3."""
    with SimRobot(task=task, cameras={"cam0": (IMAGE, IMAGE)}, control_mode="blocking", control_hz=CONTROL_HZ,
                  max_translation=STEP) as robot:
        record_expert_demos(robot, path, range(seed, seed + 10 * episodes), episodes, max_steps=120, noise=0.3,
                            overwrite=True)


def make_data(root: Path, target_demos: int, prior_episodes: int, seed: int) -> tuple[str, list[str]]:
    root.mkdir(parents=True, exist_ok=True)
    target = root / "target.zarr"
    if not target.exists():
        record_expert(target, TARGET, target_demos, seed)
    paths = []
    for k, (task, operator) in enumerate(PRIOR):
        name = {"random": "random_actions", "expert": task}.get(operator, f"{task}-{operator}")
        path = root / f"{name}.zarr"
        if not path.exists():
            if operator == "expert":
                record_expert(path, task, prior_episodes, seed + 1000 * (k + 1))
            else:
                make_sim_store(path, task, operator, prior_episodes, seed=seed + 1000 * (k + 1),
                               cameras={"cam0": (IMAGE, IMAGE)}, max_steps=40 if operator == "random" else 80,
                               noise=0.5, domain=name, control_hz=CONTROL_HZ, max_translation=STEP)
        paths.append(str(path))
    return str(target), paths


def select_all(args: argparse.Namespace, target: str, paths: list[str]) -> dict[str, Path]:
    base = SelectSettings(out=args.out / "sel-datamil", target=(target,), data=DataSettings(paths=tuple(paths)), budget=args.budget,
                          cluster=ClusterSettings(kmeans=args.kmeans), seed=args.seed, overwrite=True,
                          proxy=ProxySettings(steps=args.proxy_steps, batch_size=64, hidden_dims=(64, 64),
                                              state_hidden=32, n_bins=24, lr=2e-3, warmup_steps=10),
                          datamil=DatamilSettings(runs=args.runs, checkpoints=6, max_windows=32))
    console = Console(width=140)
    result = run_select(base, console)
    mixes = cluster_domains(result.data)
    print("\nmean score per majority domain (regression | first-order), clusters:")
    for name in [d.name for d in result.data.domains]:
        mine = np.array([next(iter(m)) == name for m in mixes])
        if mine.any():
            print(f"  {name:28s} {result.scores['regression'][mine].mean():+.4f} | "
                  f"{result.scores['first_order'][mine].mean():+.4f}  ({mine.sum()} clusters, "
                  f"all regression < 0: {bool((result.scores['regression'][mine] < 0).all())}, "
                  f"kept: {int(result.kept[mine].sum())})")
    print(f"rank correlation regression vs first-order: {result.rank_correlation:.3f}")
    outs = {"datamil": base.out}
    for method in ("retrieval", "random", "all"):
        outs[method] = args.out / f"sel-{method}"
        run_select(replace(base, out=outs[method], method=method), Console(quiet=True))
    return outs


def _run(*cmd: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    done = subprocess.run([str(BIN / cmd[0]), *cmd[1:]], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def downstream(args: argparse.Namespace, target: str, selections: dict[str, Path]) -> dict[str, str]:
    rows = {}
    for method, sel in [*selections.items(), ("target only", None)]:
        run = args.out / f"policy-{method.replace(' ', '-')}"
        data = [f"data.subset={sel}", f"data.cotrain=[{target}]", f"data.cotrain_share={args.cotrain_share}"] if sel \
            else [f"data.cotrain=[{target}]"]
        started = time.perf_counter()
        checkpoint = run / "checkpoints" / f"step_{args.train_steps:08d}"
        if not checkpoint.exists():
            _run("remix-train", str(run), *data, "recipe=cpu", "overwrite=true", f"train.steps={args.train_steps}",
                 f"train.val_every={args.train_steps}", f"train.save_every={args.train_steps}", "train.progress=false")
        out = _run("remix-eval", *ROBOT_ARGS, f"tasks=[{TARGET}]", f"policies={{p:{checkpoint}}}", f"trials={args.trials}",
                   "operator=scripted", f"out={args.out / 'evals' / (method.replace(' ', '-') + '.sqlite')}",
                   "progress=false", "time_limit_s=12")
        found = re.search(r"(\d+)/(\d+) \((\d+)%", out)
        rows[method] = found.group(0) + ")" if found else "no result"
        print(f"{method:12s} success {rows[method]}  ({time.perf_counter() - started:.0f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/select-bench"))
    parser.add_argument("--target-demos", type=int, default=25)
    parser.add_argument("--prior-episodes", type=int, default=20)
    parser.add_argument("--budget", type=float, default=0.25)
    parser.add_argument("--kmeans", type=int, default=16)
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--proxy-steps", type=int, default=300)
    parser.add_argument("--train-steps", type=int, default=0, help="remix-train steps per policy; 0 = no downstream")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--cotrain-share", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="reuse the selections already in --out (downstream only)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    started = time.perf_counter()
    target, paths = make_data(args.out / "data", args.target_demos, args.prior_episodes, args.seed)
    print(f"sim data ready in {time.perf_counter() - started:.0f} s")
    if args.reuse:
        selections = {m: args.out / f"sel-{m}" for m in ("datamil", "retrieval", "random", "all")}
    else:
        selections = select_all(args, target, paths)
    summary = {"selections": {m: json.loads((p / "subset.json").read_text())["weights"] for m, p in selections.items()}}
    if args.train_steps > 0:
        summary["success"] = downstream(args, target, selections)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
