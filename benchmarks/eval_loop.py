"""Evaluation-harness costs, each against a baseline measured in the same run.

1. Committing a finished 100 s trial at 10 Hz (1000 steps) as one durable transaction, vs the naive
   logger that commits every step as it happens (both WAL + synchronous=FULL).
2. Per-step overhead of the rollout loop (stop-key thread, step log, video frame) on the mock robot in
   blocking mode with zero move time, vs a bare send_action/get_observation loop.
3. Rate-mode timing on the mock robot at 10 Hz: step-interval error and late steps.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_loop.py
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eval.rollout import RolloutSettings, run_rollout
from eval.trial_log import SessionSpec, StepRecord, TrialLog, TrialRecord
from eval.video import TrialVideo
from remix.common.operator_input import ScriptedInput
from remix.policy import Policy
from robots.mock import MockRobot

STEPS = 1000


class Forward(Policy):
    def reset(self, goal) -> None:
        pass

    def act(self, observation) -> np.ndarray:
        return np.array([0.001, 0, 0, 0, 0, 0, 1], np.float32)


def bench_commit(folder: Path) -> None:
    steps = [StepRecord(0.1 * i, np.random.rand(7).astype(np.float32), np.random.rand(7).astype(np.float32),
                        np.random.rand(7).astype(np.float32)) for i in range(STEPS)]
    with TrialLog.create(folder / "one.sqlite") as log:
        session, _ = log.start_session(SessionSpec("b", "mock", "rate", 10.0, ("a",), {"p": "x"}, 10, 100.0))
        times = []
        for index in range(5):
            start = time.perf_counter()
            log.record_trial(TrialRecord(session.id, "a", "p", index, 0, 0, 0.0, 100.0, STEPS, "success", "operator",
                                         "operator", ""), steps)
            times.append(time.perf_counter() - start)
    one = statistics.median(times)
    db = sqlite3.connect(folder / "naive.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE s (trial INTEGER, step INTEGER, t REAL, action BLOB, applied BLOB, state BLOB)")
    start = time.perf_counter()
    for i, s in enumerate(steps):
        db.execute("BEGIN")
        db.execute("INSERT INTO s VALUES (?,?,?,?,?,?)", (0, i, s.t, s.action.tobytes(), s.applied.tobytes(),
                                                         s.state.tobytes()))
        db.execute("COMMIT")
    naive = time.perf_counter() - start
    db.close()
    print(f"[commit] 1000-step trial, one transaction: {one * 1e3:.1f} ms (median of 5); "
          f"per-step commits: {naive * 1e3:.1f} ms total ({naive / STEPS * 1e3:.2f} ms/step); ratio {naive / one:.1f}x")


def bench_overhead(folder: Path, steps: int = 300) -> None:
    robot = MockRobot(control_mode="blocking", control_hz=10.0, moving_time_s=0.0)
    policy = Forward()
    with robot:
        first = robot.reset()
        start = time.perf_counter()
        for _ in range(steps):
            robot.send_action(policy.act(first))
            robot.get_observation()
        bare = (time.perf_counter() - start) / steps
        robot.reset()
        video = TrialVideo(folder / "v.mp4", robot.control_hz)
        result = run_rollout(robot, policy, first, first, ScriptedInput(), RolloutSettings(time_limit_s=1e6, max_steps=steps),
                             video)
        video.finish()
        loop = result.duration_s / len(result.steps)
    print(f"[overhead] mock blocking, 64x64 camera: bare loop {bare * 1e3:.3f} ms/step, eval loop with step log + video "
          f"{loop * 1e3:.3f} ms/step; overhead {(loop - bare) * 1e3:.3f} ms/step "
          f"= {(loop - bare) / 0.1 * 100:.2f}% of a 10 Hz period; ratio {loop / bare:.2f}x")


def bench_rate() -> None:
    robot = MockRobot(control_mode="rate", control_hz=10.0)
    with robot:
        first = robot.reset()
        result = run_rollout(robot, Forward(), first, first, ScriptedInput(), RolloutSettings(time_limit_s=3.0))
    gaps = np.diff([s.t for s in result.steps])
    error = np.abs(gaps - 0.1)
    print(f"[rate] mock 10 Hz for 3 s: {len(result.steps)} steps (ideal 30), interval error mean {error.mean() * 1e3:.2f} ms, "
          f"max {error.max() * 1e3:.2f} ms, late steps {result.late_steps}")


def main() -> None:
    torch.set_num_threads(1)
    print(f"torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bench_commit(folder)
        bench_overhead(folder)
        bench_rate()


if __name__ == "__main__":
    main()
