"""10 Hz control loop on the mock, sim and remote->mock backends with a dummy policy.

Prints, per backend: mean period, p99 |jitter| (tick start vs. its nominal time), late ticks, and the
per-tick time of the stack (get_observation + send_action) split into the backend's own work (its hooks,
timed directly on the same robot in the same run) and the stack's overhead on top (safety layer,
cameras, rpc; for remote->mock the backend is the served mock, in its own process). Goal: p99 jitter <= 5 ms at 10 Hz. Writes a PNG of the tick-start jitter.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/control_loop.py --rounds 3 --ticks 50 [--realtime]

Backends run interleaved in rounds so a burst of load on the machine hits all of them alike; `--realtime`
runs the loop under SCHED_FIFO as a robot host would (the no-robot baseline shows what the OS allows).
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

from remix.common.rate import Rate  # noqa: E402
from remix.common.rpc import RpcClient  # noqa: E402
from robots.mock import MockRobot  # noqa: E402
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


def realtime_priority(priority: int = 10) -> str:
    """SCHED_FIFO for this process (as a robot host would run its loop); returns what was set."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return f"SCHED_FIFO {priority}"
    except (AttributeError, PermissionError, OSError) as error:
        return f"default scheduler (SCHED_FIFO refused: {error})"


def pooled(rounds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([r[key] for r in rounds]) for key in rounds[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ticks", type=int, default=50, help="ticks per backend per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; backends are interleaved within each round")
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--camera", type=int, default=64, help="square render size of cam0")
    parser.add_argument("--realtime", action="store_true", help="run the loop (and the robot server) under SCHED_FIFO")
    parser.add_argument("--plot", default="control_loop.png", help="PNG of the jitter per tick ('' = none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scheduler = realtime_priority() if args.realtime else "default scheduler"
    size = (args.camera, args.camera)

    mock = MockRobot(control_mode="rate", control_hz=args.hz, cameras={"cam0": size})
    sim = SimRobot(profile="franka", cameras={"cam0": size}, control_hz=args.hz)
    # the robot server runs in its own process, as on a real arm host (one process would share the GIL)
    port = 5900 + os.getpid() % 500
    server = subprocess.Popen([sys.executable, "-c", "from robots.server import main; main()", "robot=mock",
                               f"port={port}", f"robot.control_hz={args.hz}", f"robot.cameras.cam0=[{size[0]},{size[1]}]"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    remote = RemoteRobot(f"tcp://127.0.0.1:{port}")
    names = ("baseline (no robot)", "mock", "sim-franka", "remote->mock")
    rounds: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in names}
    try:
        RpcClient(f"tcp://127.0.0.1:{port}").wait_ready(timeout_s=60.0)
        with mock, sim, remote:
            for k in range(args.rounds):
                rounds["baseline (no robot)"].append(bare_loop(args.ticks, args.hz))
                rounds["mock"].append(run_loop(mock, args.ticks, args.hz, seed=k))
                rounds["sim-franka"].append(run_loop(sim, args.ticks, args.hz, seed=k))
                rounds["remote->mock"].append(run_loop(remote, args.ticks, args.hz, seed=k))
            raw = {"baseline (no robot)": float("nan"), "mock": raw_backend_tick_s(mock), "sim-franka": raw_backend_tick_s(sim)}
            raw["remote->mock"] = raw["mock"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    results = {name: pooled(rs) for name, rs in rounds.items()}

    def p99(r: dict[str, np.ndarray]) -> float:
        return float(np.percentile(np.abs(r["jitter"]), 99) * 1e3)

    table = Table(title=f"{args.hz:g} Hz control loop, {args.rounds} rounds x {args.ticks} ticks, cam0 {size[0]}x{size[1]}, "
                        f"torch threads {torch.get_num_threads()}, {scheduler}, load {os.getloadavg()[0]:.1f} on "
                        f"{os.cpu_count()} cores")
    for column in ("backend", "mean period ms", "p99 |jitter| ms", "median round p99 ms", "max |jitter| ms", "late ticks",
                   "stack ms/tick", "backend work ms", "stack overhead ms", "stack/backend"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        stack = float(np.mean(r["obs"] + r["act"]))
        table.add_row(name, f"{np.mean(np.concatenate([x['period'] for x in rounds[name]])) * 1e3:.2f}", f"{p99(r):.2f}",
                      f"{np.median([p99(x) for x in rounds[name]]):.2f}", f"{np.max(np.abs(r['jitter'])) * 1e3:.2f}",
                      f"{int(r['late'].sum())}", f"{stack * 1e3:.2f}", f"{raw[name] * 1e3:.2f}",
                      f"{(stack - raw[name]) * 1e3:.2f}", "-" if np.isnan(raw[name]) else f"{stack / raw[name]:.1f}x")
    Console(width=220).print(table)
    base = p99(results["baseline (no robot)"])
    for name, r in results.items():
        print(f"{name}: p99 jitter {p99(r):.2f} ms ({p99(r) / max(base, 1e-6):.1f}x the no-robot baseline) -> "
              f"{'meets' if p99(r) <= 5.0 else 'MISSES'} the 5 ms goal")

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(9, 4))
        for name, r in results.items():
            ax.plot(r["jitter"] * 1e3, label=name, lw=1)
        ax.axhline(5, color="k", ls="--", lw=0.8)
        ax.set_xlabel(f"tick (rounds concatenated, {args.ticks} ticks each)")
        ax.set_ylabel("tick start - nominal (ms)")
        ax.set_title(f"{args.hz:g} Hz loop jitter ({scheduler})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
