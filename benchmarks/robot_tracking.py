"""How far the arm follows 10 Hz (Franka) / 5 Hz (WidowX) commands, and how long a reset takes.

Franka: the real franky + libfranka client against franky-sim (libfranka's protocol on loopback, MuJoCo
FR3). The loop sends +2 cm x steps toward a target 20 cm away at 10 Hz *of simulated time* (the Python
simulator runs slower than real time on a loaded machine; libfranka follows its clock), and reports how far
the flange moved after 1 s, the lag behind the commanded target, and the reset time from 20 cm away.
`before` rebuilds the old driver's call pattern (dynamics factor on the Robot *and* on every motion, which
franky multiplies) to show the effect of the fix on the same simulator.

WidowX: the Interbotix fake's timing model at real speed (0.2 s blocking steps at 5 Hz, 1.5 s reset moves,
1 s finger travel, the SDK's velocity check against the previous moving time).

    OMP_NUM_THREADS=1 MUJOCO_GL=egl .venv/bin/python benchmarks/robot_tracking.py [--skip-widowx]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "robots"))

STEP_M, STEPS_PER_S = 0.02, 10
WIDOWX_STEP = [0, STEP_M, 0, 0, 0, 0, 1]  # +y: the BridgeData workspace is only 15 cm deep in x from home


def double_factor_robot(franky: Any, dynamics: dict[str, float]) -> Any:
    """The pre-fix driver's Robot: its dynamics factor is multiplied with every motion's."""
    def build(host: str, relative_dynamics_factor: Any = 1.0, realtime_config: Any = None) -> Any:
        return franky.Robot(host, relative_dynamics_factor=franky.RelativeDynamicsFactor(**dynamics),
                            realtime_config=realtime_config)
    return build


def franka_run(server: Any, host: str, before: bool, dynamics: dict[str, float]) -> dict[str, float]:
    import franky

    from robots.franka import FrankaRobot

    factory = double_factor_robot(franky, dynamics) if before else None
    with FrankaRobot(fci_host=host, realtime=False, dynamics=dynamics, watchdog_periods=1e6,
                     robot_factory=factory) as robot:
        start = robot.reset().state[:3].copy()
        for _ in range(STEPS_PER_S):
            robot.send_action([STEP_M, 0, 0, 0, 0, 0, 1])
            server.sleep_sim(1.0 / STEPS_PER_S)
        moved = float(robot.get_observation().state[0] - start[0])
        lag = float(robot.target.position[0] - start[0]) - moved
        while robot.target.position[0] - start[0] < 0.2 - 1e-9:  # the rest of the way to 20 cm
            robot.send_action([STEP_M, 0, 0, 0, 0, 0, 1])
        for _ in range(100):  # settle there (at most 10 s of simulated time)
            if abs(robot.get_observation().state[0] - robot.target.position[0]) < 0.002:
                break
            server.sleep_sim(0.1)
        began = server.sim_time
        robot.reset()
        reset_s = server.sim_time - began
    return {"moved_mm": moved * 1000, "lag_mm": lag * 1000, "reset_s": reset_s}


def widowx_run() -> dict[str, float]:
    import pytest
    from sdk_fakes import install_interbotix

    from robots.widowx import WidowXRobot

    with pytest.MonkeyPatch.context() as patch:
        install_interbotix(patch, ros2=True)
        with WidowXRobot() as robot:
            start = robot.reset().state[:3].copy()
            began = time.monotonic()
            while time.monotonic() - began < 1.0 - 1e-3:  # blocking: each step returns when its move is done
                robot.send_action(WIDOWX_STEP)
            moved = float(robot.get_observation().state[1] - start[1])
            lag = float(robot.target.position[1] - start[1]) - moved
            while robot.target.position[1] - start[1] < 0.2 - 1e-9:
                robot.send_action(WIDOWX_STEP)
            began = time.monotonic()
            robot.reset()
            reset_s = time.monotonic() - began
    return {"moved_mm": moved * 1000, "lag_mm": lag * 1000, "reset_s": reset_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-widowx", action="store_true")
    parser.add_argument("--dynamics", type=float, nargs=3, default=(0.5, 0.1, 0.1),
                        metavar=("VELOCITY", "ACCELERATION", "JERK"), help="franka per-step dynamics (the config's default)")
    args = parser.parse_args()
    from robots.franky_sim_server import FrankySimServer

    dynamics = dict(zip(("velocity", "acceleration", "jerk"), args.dynamics))
    table = Table(title="tracking +2 cm steps toward a target 20 cm away, and reset from 20 cm away")
    for column in ("arm", "driver", "moved after 1 s (mm)", "lag behind target (mm)", "reset (s)", "clock"):
        table.add_column(column)
    with FrankySimServer() as (server, host):
        wall, sim = time.monotonic(), server.sim_time
        for before in (False, True):
            row = franka_run(server, host, before, dynamics)
            table.add_row("franka (franky-sim)", "before fix (factor twice)" if before else "fixed",
                          f"{row['moved_mm']:.1f}", f"{row['lag_mm']:.1f}", f"{row['reset_s']:.2f}", "simulated")
        speed = (server.sim_time - sim) / (time.monotonic() - wall)
    if not args.skip_widowx:
        row = widowx_run()
        table.add_row("widowx (Interbotix fake)", "fixed", f"{row['moved_mm']:.1f}", f"{row['lag_mm']:.1f}",
                      f"{row['reset_s']:.2f}", "wall")
    console = Console()
    console.print(table)
    console.print(f"franky-sim ran at {speed:.2f}x real time; dynamics {dynamics}; 10 Hz franka / 5 Hz widowx; "
                  f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


if __name__ == "__main__":
    main()
