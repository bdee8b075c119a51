"""10 Hz control loop on the mock, sim and remote->mock backends with a dummy policy.

Prints, per backend: mean period, p99 |jitter| (tick start vs. its nominal time), late ticks, and the
per-tick time of the stack (get_observation + send_action) split into the backend's own work (its hooks,
timed directly on the same robot in the same run) and the stack's overhead on top (safety layer,
cameras, rpc; for remote->mock the backend is the served mock, in its own process). Goal: p99 jitter <= 5 ms at 10 Hz. Writes a PNG of the tick-start jitter.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/control_loop.py --ticks 100 --plot control_loop.png
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from remix.rpc import RpcClient  # noqa: E402
from robots.mock import MockRobot  # noqa: E402
from robots.rate import Rate  # noqa: E402
from robots.remote import RemoteRobot  # noqa: E402
from robots.robot import ArmRobot, Robot  # noqa: E402
from robots.sim import SimRobot  # noqa: E402


def dummy_policy(rng: np.random.Generator) -> np.ndarray:
    action = rng.normal(0.0, 0.005, size=7)
    action[6] = 1.0
    return action


def run_loop(robot: Robot, ticks: int, hz: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    robot.reset(seed=seed)
    rate = Rate(hz)
    starts, obs_s, act_s = [], [], []
    rate.reset()
    for _ in range(ticks):
        starts.append(time.perf_counter())
        t0 = time.perf_counter()
        robot.get_observation()
        t1 = time.perf_counter()
        robot.send_action(dummy_policy(rng))
        t2 = time.perf_counter()
        obs_s.append(t1 - t0)
        act_s.append(t2 - t1)
        rate.sleep()
    starts_a = np.array(starts)
    nominal = starts_a[0] + np.arange(ticks) / hz
    return {"period": np.diff(starts_a), "jitter": starts_a - nominal, "obs": np.array(obs_s), "act": np.array(act_s),
            "late": np.array([rate.late_ticks])}


def bare_loop(ticks: int, hz: float) -> dict[str, np.ndarray]:
    """Baseline: the same rate keeper with no robot and no policy (what the machine's scheduler allows)."""
    rate = Rate(hz)
    starts = []
    rate.reset()
    for _ in range(ticks):
        starts.append(time.perf_counter())
        rate.sleep()
    starts_a = np.array(starts)
    zeros = np.zeros(ticks)
    return {"period": np.diff(starts_a), "jitter": starts_a - (starts_a[0] + np.arange(ticks) / hz), "obs": zeros,
            "act": zeros, "late": np.array([rate.late_ticks])}


def raw_backend_tick_s(robot: ArmRobot, repeats: int = 50) -> float:
    """The backend's own work per tick (hooks called directly: cameras' render/grab, pose read, command)."""
    robot.reset(seed=0)
    target = robot.target
    started = time.perf_counter()
    for _ in range(repeats):
        for camera in robot.cameras.values():
            camera._grab(1.0)
        robot._read_pose()
        robot._command(target)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--camera", type=int, default=64, help="square render size of cam0")
    parser.add_argument("--plot", default="control_loop.png", help="PNG of the jitter per tick ('' = none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    size = (args.camera, args.camera)

    results: dict[str, dict[str, np.ndarray]] = {"baseline (no robot)": bare_loop(args.ticks, args.hz)}
    raw: dict[str, float] = {"baseline (no robot)": float("nan")}
    mock = MockRobot(control_mode="rate", control_hz=args.hz, cameras={"cam0": size})
    sim = SimRobot(profile="franka", cameras={"cam0": size}, control_hz=args.hz)
    for name, robot in (("mock", mock), ("sim-franka", sim)):
        with robot:
            results[name] = run_loop(robot, args.ticks, args.hz)
            raw[name] = raw_backend_tick_s(robot)
    # the robot server runs in its own process, as on a real arm host (one process would share the GIL)
    port = 5900 + os.getpid() % 500
    server = subprocess.Popen([sys.executable, "-c", "from robots.server import main; main()", "robot=mock",
                               f"port={port}", f"robot.control_hz={args.hz}", f"robot.cameras.cam0=[{size[0]},{size[1]}]"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        RpcClient(f"tcp://127.0.0.1:{port}").wait_ready(timeout_s=60.0)
        with RemoteRobot(f"tcp://127.0.0.1:{port}") as remote:
            results["remote->mock"] = run_loop(remote, args.ticks, args.hz)
            raw["remote->mock"] = raw["mock"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)

    table = Table(title=f"{args.hz:g} Hz control loop, {args.ticks} ticks, cam0 {size[0]}x{size[1]}, torch threads "
                        f"{torch.get_num_threads()}")
    for column in ("backend", "mean period ms", "p99 |jitter| ms", "max |jitter| ms", "late ticks",
                   "stack ms/tick", "backend work ms", "stack overhead ms", "stack/backend"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        stack = float(np.mean(r["obs"] + r["act"]))
        table.add_row(name, f"{np.mean(r['period']) * 1e3:.2f}", f"{np.percentile(np.abs(r['jitter']), 99) * 1e3:.2f}",
                      f"{np.max(np.abs(r['jitter'])) * 1e3:.2f}", f"{int(r['late'][0])}", f"{stack * 1e3:.2f}",
                      f"{raw[name] * 1e3:.2f}", f"{(stack - raw[name]) * 1e3:.2f}",
                      "-" if np.isnan(raw[name]) else f"{stack / raw[name]:.1f}x")
    Console(width=200).print(table)
    base = np.percentile(np.abs(results["baseline (no robot)"]["jitter"]), 99) * 1e3
    for name, r in results.items():
        p99 = np.percentile(np.abs(r["jitter"]), 99) * 1e3
        print(f"{name}: p99 jitter {p99:.2f} ms ({p99 / max(base, 1e-6):.1f}x the no-robot baseline) -> "
              f"{'meets' if p99 <= 5.0 else 'MISSES'} the 5 ms goal")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4))
        for name, r in results.items():
            ax.plot(r["jitter"] * 1e3, label=name, lw=1)
        ax.axhline(5, color="k", ls="--", lw=0.8)
        ax.axhline(-5, color="k", ls="--", lw=0.8)
        ax.set_xlabel("tick")
        ax.set_ylabel("tick start - nominal (ms)")
        ax.set_title(f"{args.hz:g} Hz loop jitter")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
