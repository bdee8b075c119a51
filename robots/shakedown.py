"""`remix-shakedown`: first contact with an arm, step by step, with the operator confirming each step.

    remix-shakedown robot=franka robot.fci_host=172.16.0.2
    remix-shakedown robot=widowx
    remix-shakedown robot=sim operator=scripted operator.answers=[y,y,y,y,y,y,y,y]

Steps: connect, read the state (pose finite, camera frames fresh), reset to home (timed), a small move
along +/- x, y, z (how long until the measured pose is within `tolerance_m` of the command, and how far it
lags after one control period), gripper close/open (time to travel), stop (nothing moves while stopped)
and resume, and a final reset. Each step is announced and run only after the operator answers y (n skips,
q ends the session; the arm is stopped and disconnected either way). A table of pass/fail with the
figures closes the run; the exit code is 1 if a step failed.

Rate-mode arms (Franka) get zero-delta actions at their control rate while a move is measured, so the
watchdog never trips. Times are wall clock: against franky-sim they include its slower-than-real-time
simulation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from remix.common.cli import hydra_main, operator_from_config
from remix.common.config import register
from remix.common.errors import ConfigError, RemixError
from remix.common.operator_input import OperatorInput
from robots.robot import ControlMode, Robot, make_robot

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class StepResult:
    """One row of the closing table."""

    name: str
    status: str  # pass | FAIL | skipped
    figures: str


@dataclass(frozen=True)
class ShakedownSettings:
    move_m: float = 0.02  # size of each axis move (clipped to the robot's per-step limit)
    tolerance_m: float = 0.003  # the move counts as reached within this distance
    timeout_s: float = 5.0  # per move / gripper stroke
    gripper: bool = True  # test the gripper (false for an arm without one)


class Abort(Exception):
    """The operator ended the session (answered q)."""


class Shakedown:
    """Runs the steps on a connected robot; `results` collects one StepResult per step."""

    def __init__(self, robot: Robot, operator: OperatorInput, settings: ShakedownSettings) -> None:
        self.robot = robot
        self.operator = operator
        self.settings = settings
        self.results: list[StepResult] = []

    # ------------------------------------------------------------------------------------------ helpers
    def confirm(self, name: str, what: str) -> bool:
        answer = self.operator.ask(f"next: {name} - {what}. Run it?", choices=["y", "n", "q"], default="y")
        if answer == "q":
            raise Abort
        if answer == "n":
            self.results.append(StepResult(name, "skipped", "operator skipped"))
        return answer == "y"

    def record(self, name: str, passed: bool, figures: str) -> None:
        self.results.append(StepResult(name, "pass" if passed else "FAIL", figures))
        self.operator.say(f"{name}: {'pass' if passed else 'FAIL'} ({figures})")

    def run_step(self, name: str, what: str, step: Callable[[], tuple[bool, str]]) -> None:
        if not self.confirm(name, what):
            return
        try:
            passed, figures = step()
        except RemixError as error:  # RobotFault, HardwareError: the step failed, the session goes on
            passed, figures = False, f"{type(error).__name__}: {error}"
        self.record(name, passed, figures)

    def hold(self, seconds: float) -> None:
        """Wait while keeping a rate-mode arm fed with zero deltas (its watchdog would stop it)."""
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            self.tick_zero()

    def tick_zero(self) -> None:
        if self.robot.control_mode is ControlMode.RATE:
            self.robot.send_action(np.array([0, 0, 0, 0, 0, 0, self.gripper_now()], dtype=np.float32))
        time.sleep(self.robot.period_s)

    def gripper_now(self) -> float:
        return 1.0 if self._gripper_target is None else self._gripper_target

    _gripper_target: float | None = None

    # -------------------------------------------------------------------------------------------- steps
    def read_state(self) -> tuple[bool, str]:
        obs = self.robot.get_observation()
        finite = bool(np.all(np.isfinite(obs.state)))
        ages = {name: obs.timestamps["state"] - obs.timestamps[name] for name in obs.images}
        shapes_ok = all(obs.images[n].shape[:2] == tuple(self.robot.observation_spec.cameras[n]) for n in obs.images)
        pose = ", ".join(f"{v:.3f}" for v in obs.state)
        frames = "; ".join(f"{n} {obs.images[n].shape[1]}x{obs.images[n].shape[0]} {age * 1000:.0f} ms old"
                           for n, age in ages.items()) or "no cameras"
        return finite and shapes_ok, f"state [{pose}]; {frames}"

    def reset(self) -> tuple[bool, str]:
        started = time.monotonic()
        obs = self.robot.reset()
        seconds = time.monotonic() - started
        self._gripper_target = float(obs.state[6])
        return bool(np.all(np.isfinite(obs.state))), f"{seconds:.2f} s; pose [{', '.join(f'{v:.3f}' for v in obs.state[:3])}]"

    def move(self, axis: int, sign: float) -> tuple[bool, str]:
        """One small move; the lag is the time until the measured pose is within tolerance of the command."""
        step = min(self.settings.move_m, self.robot.action_spec.max_translation)
        before = self.robot.get_observation().state
        action = np.zeros(7, dtype=np.float32)
        action[axis] = sign * step
        action[6] = self.gripper_now()
        started = time.monotonic()
        applied = self.robot.send_action(action)
        commanded = before[:3] + applied[:3]
        after_period: float | None = None
        reached: float | None = None
        while time.monotonic() - started < self.settings.timeout_s:
            error = float(np.linalg.norm(self.robot.get_observation().state[:3] - commanded))
            elapsed = time.monotonic() - started
            if after_period is None and elapsed >= self.robot.period_s:
                after_period = error
            if error <= self.settings.tolerance_m:
                reached = elapsed
                break
            self.tick_zero()
        final = float(np.linalg.norm(self.robot.get_observation().state[:3] - commanded))
        lag = f"reached in {reached:.2f} s" if reached is not None else f"not reached in {self.settings.timeout_s:g} s"
        period = f"{(after_period if after_period is not None else final) * 1000:.1f} mm off after one period"
        clipped = "" if abs(applied[axis]) >= step - 1e-6 else f"; clipped to {applied[axis] * 1000:.1f} mm (workspace)"
        return reached is not None, f"{lag}; {period}; final error {final * 1000:.1f} mm{clipped}"

    def gripper(self, opening: float) -> tuple[bool, str]:
        self._gripper_target = opening
        started = time.monotonic()
        self.robot.send_action(np.array([0, 0, 0, 0, 0, 0, opening], dtype=np.float32))
        while time.monotonic() - started < self.settings.timeout_s:
            measured = float(self.robot.get_observation().state[6])
            if abs(measured - opening) <= 0.1:
                return True, f"{time.monotonic() - started:.2f} s; opening {measured:.2f}"
            self.tick_zero()
        measured = float(self.robot.get_observation().state[6])
        return False, f"opening {measured:.2f} after {self.settings.timeout_s:g} s (asked {opening:g})"

    def stop_resume(self) -> tuple[bool, str]:
        step = min(self.settings.move_m, self.robot.action_spec.max_translation)
        self.robot.send_action(np.array([0, 0, -step, 0, 0, 0, self.gripper_now()], dtype=np.float32))
        self.robot.stop()
        held_from = self.robot.get_observation().state[:3]
        held = self.robot.send_action(np.array([0, 0, -step, 0, 0, 0, self.gripper_now()], dtype=np.float32))
        time.sleep(max(0.5, 2 * self.robot.period_s))
        drift = float(np.linalg.norm(self.robot.get_observation().state[:3] - held_from))
        stopped_ok = self.robot.stopped and not np.any(held[:3])
        self.robot.resume()
        passed, figures = self.move(2, +1.0)
        return stopped_ok and passed, f"stopped: actions held, {drift * 1000:.1f} mm drift in the stop; after resume: {figures}"

    # ---------------------------------------------------------------------------------------------- run
    def run(self) -> list[StepResult]:
        s = self.settings
        self.run_step("read state", "read the pose, gripper and camera frames", self.read_state)
        self.run_step("reset", "go home (lift, travel above home, descend)", self.reset)
        for index, axis in enumerate(AXES):
            for sign in (+1.0, -1.0):
                name = f"move {'+' if sign > 0 else '-'}{axis}"
                self.run_step(name, f"{s.move_m * 100:g} cm along {'+' if sign > 0 else '-'}{axis}",
                              lambda index=index, sign=sign: self.move(index, sign))
        if s.gripper:
            self.run_step("gripper close", "close the gripper", lambda: self.gripper(0.0))
            self.run_step("gripper open", "open the gripper", lambda: self.gripper(1.0))
        else:
            self.results.append(StepResult("gripper", "skipped", "gripper=false"))
        self.run_step("stop / resume", "start a move down, stop at once, then resume", self.stop_resume)
        self.run_step("reset again", "go home from here", self.reset)
        return self.results


def print_table(robot_name: str, results: list[StepResult], console: Console | None = None) -> None:
    table = Table(title=f"shakedown: {robot_name}")
    table.add_column("step")
    table.add_column("result")
    table.add_column("figures")
    for result in results:
        style = {"pass": "green", "FAIL": "bold red"}.get(result.status, "yellow")
        table.add_row(result.name, f"[{style}]{result.status}[/]", result.figures)
    (console or Console()).print(table)


def run_shakedown(robot: Robot, operator: OperatorInput, settings: ShakedownSettings) -> list[StepResult]:
    """Connect (after the operator agrees), run every step, always stop and disconnect."""
    results: list[StepResult] = []
    operator.say(f"shakedown of {robot.name}: each step waits for your answer (y = run, n = skip, q = quit); "
                 "keep a hand on the e-stop")
    try:
        if operator.ask(f"next: connect to {robot.name}. Run it?", choices=["y", "n", "q"], default="y") != "y":
            return [StepResult("connect", "skipped", "operator declined")]
        started = time.monotonic()
        with robot:
            results.append(StepResult("connect", "pass", f"{time.monotonic() - started:.2f} s"))
            shakedown = Shakedown(robot, operator, settings)
            shakedown.results = results
            try:
                shakedown.run()
            except Abort:
                results.append(StepResult("(rest)", "skipped", "operator quit"))
            finally:
                robot.stop()
    except Abort:
        results.append(StepResult("(rest)", "skipped", "operator quit"))
    return results


@dataclass(frozen=True)
class ShakedownCommand(ShakedownSettings):
    """remix-shakedown's settings: ShakedownSettings plus the robot and operator config groups."""

    robot: Any = None  # robot=franka|widowx|sim|mock
    operator: Any = None  # operator=terminal|scripted


register("shakedown_schema", ShakedownCommand)


def settings_from_config(cfg: DictConfig) -> ShakedownSettings:
    settings = ShakedownSettings(move_m=float(cfg.move_m), tolerance_m=float(cfg.tolerance_m),
                                 timeout_s=float(cfg.timeout_s), gripper=bool(cfg.gripper))
    if not 0 < settings.move_m <= 0.05 or settings.tolerance_m <= 0 or settings.timeout_s <= 0:
        raise ConfigError("shakedown needs 0 < move_m <= 0.05 m, tolerance_m > 0 and timeout_s > 0")
    return settings


@hydra_main("shakedown")
def shakedown_main(cfg: DictConfig) -> int:
    """remix-shakedown: first contact with an arm, one confirmed step at a time, then a pass/fail table.

    Usage:
      remix-shakedown robot=franka|widowx|sim|mock [move_m=0.02] [tolerance_m=0.003] [gripper=true]
      remix-shakedown robot=sim operator=scripted operator.answers=[y,y,y,y,y,y,y,y,y,y,y,y,y,y]
    Steps: connect, read state, reset, +/- x y z moves (lag figures), gripper close/open, stop/resume, reset.
    Answer y to run a step, n to skip it, q to stop the session. Exit code 1 if a step failed.
    """
    settings = settings_from_config(cfg)
    operator = operator_from_config(cfg.operator)
    robot = make_robot(cfg.robot)
    results = run_shakedown(robot, operator, settings)
    print_table(robot.name, results)
    return 1 if any(r.status == "FAIL" for r in results) else 0
