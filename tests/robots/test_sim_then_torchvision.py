"""Rendering the sim first and importing torchvision afterwards must not crash (triton vs Mesa LLVM)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import torch
    from robots.sim import SimRobot
    robot = SimRobot(profile="widowx")
    robot.connect()
    print(robot.reset(seed=0).images["cam0"].shape, flush=True)
    import torchvision
    robot.disconnect()
    print("torchvision", torchvision.__version__)
    """
)


def test_torchvision_import_after_sim_render_in_a_fresh_process():
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-1500:]}"
    assert "torchvision" in result.stdout
