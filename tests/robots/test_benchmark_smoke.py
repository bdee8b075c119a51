"""The control-loop benchmark still runs end to end (tiny settings), so it does not rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "control_loop.py"


def test_control_loop_benchmark_runs(tmp_path) -> None:
    plot = tmp_path / "loop.png"
    result = subprocess.run([sys.executable, str(BENCHMARK), "--rounds", "1", "--ticks", "3", "--hz", "50",
                             "--camera", "16", "--plot", str(plot)], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    for backend in ("baseline (no robot)", "mock", "sim-franka", "remote->mock"):
        assert f"{backend}: p99 jitter" in result.stdout
    assert plot.stat().st_size > 1000
