"""One evaluation trial: run a policy on a robot until the operator, the clock or the sim ends it.

The loop follows the robot's control mode. A blocking robot (WidowX) returns from `send_action` when
the move is done, so the loop runs as fast as the arm moves. A rate robot (Franka, 10 Hz) returns at
once, so the loop keeps a fixed period itself (`remix.common.rate.Rate`: deadlines on a fixed grid; an overrun
step is counted and skipped ahead, never "caught up" with a burst of commands). A simulator advances one period per action whatever the wall
clock says, so with `sim_time` the time limit counts simulated seconds and the loop never sleeps.
Safety stays with the robot layer: clipping, NaN rejection and
the rate-mode watchdog that holds the arm when the policy stalls. The operator's stop key halts the
arm at once from its own thread (`robots.safety.StopKeyMonitor`) and ends the trial.

Every step's raw action, applied action and state are logged, and one video frame is written per
control step (plus the initial frame), so the video plays at the control rate.

The policy's own failures end the trial, never the process with a traceback: its calls run on a worker
thread under a deadline (`policy_timeout_s`); a call that overruns it (a hung model, a dead remote
policy) or raises an unexpected exception ends the trial with the arm stopped and the reason
`policy_timeout` / `policy_error` (the session scores it a failure and stops there). A `RemixError` from
the policy is a setup problem with its own one-line message (e.g. a checkpoint trained on other image
sizes): the trial is dropped unscored and the error goes up, as for Ctrl-C.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval.trial_log import StepRecord
from eval.video import TrialVideo, tile_frames
from remix.common.errors import RemixError
from remix.common.operator_input import OperatorInput
from remix.common.rate import Rate
from remix.policy import Policy
from robots.robot import ControlMode, Observation, Robot, RobotFault
from robots.safety import StopKeyMonitor

END_OPERATOR = "operator"
END_TIME_LIMIT = "time_limit"
END_SUCCESS_PREDICATE = "success_predicate"
END_ROBOT_FAULT = "robot_fault"
END_MAX_STEPS = "max_steps"
END_POLICY_ERROR = "policy_error"  # the policy raised an unexpected exception
END_POLICY_TIMEOUT = "policy_timeout"  # one policy call overran policy_timeout_s
POLICY_ENDS = (END_POLICY_ERROR, END_POLICY_TIMEOUT)


@dataclass(frozen=True)
class RolloutSettings:
    """How a trial is run (the eval config's `rollout` block)."""

    time_limit_s: float = 100.0  # the paper's limit per trial
    stop_keys: tuple[str, ...] = ("s", " ")  # operator ends the trial (and halts the arm at once)
    max_steps: int | None = None  # optional cap, mostly for simulation
    video_cameras: tuple[str, ...] = ()  # cameras tiled into the video; () = all
    sim_time: bool = False  # simulators: time = steps x period (one period per action), no sleeping
    policy_timeout_s: float | None = 60.0  # deadline of one policy call (reset or act); None = wait forever

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s must be positive, got {self.time_limit_s}")
        if self.policy_timeout_s is not None and not self.policy_timeout_s > 0:
            raise ValueError(f"policy_timeout_s must be positive or None, got {self.policy_timeout_s}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")


@dataclass(frozen=True)
class RolloutResult:
    """What happened in one trial (the label comes later: operator, predicate or fault)."""

    steps: tuple[StepRecord, ...]
    started_at: float  # time.time()
    ended_at: float
    end_reason: str
    success_predicate: bool | None  # the sim's verdict at the end; None on real robots
    fault: str | None  # the RobotFault message when end_reason == robot_fault, or the policy's error/timeout
    late_steps: int  # rate mode: steps that overran a whole period
    watchdog_trips: int  # rate mode: times the robot held because no action came in time
    frames: int

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at


def run_rollout(
    robot: Robot,
    policy: Policy,
    goal: Observation,
    first_observation: Observation,
    operator: OperatorInput,
    settings: RolloutSettings,
    video: TrialVideo | None = None,
) -> RolloutResult:
    """Run one trial from `first_observation` (the robot has been reset and the scene set)."""
    period = robot.period_s
    rate = Rate(robot.control_hz) if robot.control_mode is ControlMode.RATE and not settings.sim_time else None
    trips_before = robot.events.watchdog_trips
    steps: list[StepRecord] = []
    fault: str | None = None
    observation = first_observation
    call = PolicyCaller(settings.policy_timeout_s)
    try:
        reason, fault = _policy_call(call, "reset", policy.reset, goal)
    except BaseException as error:
        call.close()
        _halt(robot, error)
        raise
    if video is not None:
        video.write(tile_frames(observation.images, settings.video_cameras))
    started_at = time.time()
    start = time.monotonic()
    if rate is not None:
        rate.reset()
    try:
        with StopKeyMonitor(operator, robot.stop, keys=settings.stop_keys) as monitor:
            while reason is None:
                elapsed = len(steps) * period if settings.sim_time else time.monotonic() - start
                reason = _end_reason(robot, monitor, elapsed, len(steps), settings)
                if reason is not None:
                    break
                reason, fault, action = _policy_act(call, policy, observation)
                if reason is not None:
                    break
                try:
                    if monitor.triggered.is_set():  # the stop key arrived while the policy was thinking
                        reason = END_OPERATOR
                        break
                    applied = robot.send_action(action)
                    t = (len(steps) + 1) * period if settings.sim_time else time.monotonic() - start
                    steps.append(StepRecord(t=t, action=action, applied=np.asarray(applied, np.float32),
                                            state=np.asarray(observation.state, np.float32)))
                    if rate is not None:
                        rate.sleep()
                    observation = robot.get_observation()
                except RobotFault as error:
                    reason, fault = END_ROBOT_FAULT, str(error)
                    break
                if video is not None:
                    video.write(tile_frames(observation.images, settings.video_cameras))
    except BaseException as error:  # a setup error, a lost robot server or Ctrl-C mid-trial: halt, drop the trial
        call.close()
        _halt(robot, error)
        raise
    robot.stop()  # hold wherever the trial ended (also when the policy stalled or failed); the next reset clears it
    call.close()
    ended_at = time.time()
    predicate = _predicate(robot) if reason not in (END_ROBOT_FAULT, *POLICY_ENDS) else None
    return RolloutResult(
        steps=tuple(steps), started_at=started_at, ended_at=ended_at, end_reason=reason, success_predicate=predicate,
        fault=fault, late_steps=rate.late_ticks if rate is not None else 0, watchdog_trips=robot.events.watchdog_trips - trips_before,
        frames=video.frames if video is not None else 0,
    )


def _halt(robot: Robot, error: BaseException) -> None:
    """Stop the arm before `error` goes up; if the stop fails too (a frozen robot server), say so in one line."""
    try:
        robot.stop()
    except RemixError as stop_error:
        if isinstance(error, RemixError):
            raise RemixError(f"{error}; the stop did not get through either ({stop_error})") from error
        raise stop_error from error


class PolicyStalled(Exception):
    """A policy call overran its deadline (raised by PolicyCaller; the call itself is abandoned)."""


class PolicyCaller:
    """Runs a policy's calls one at a time on a daemon thread, each with a deadline.

    Why a thread: a hung `act` (a deadlocked model, a remote policy that never answers) must not hang the
    session with the arm waiting for a command. Python cannot kill a thread, so an overrunning call is
    abandoned: the rollout stops the arm and ends the trial, the thread stays parked (a daemon, so it does
    not keep the process alive) and this caller refuses further calls. With no deadline, calls run inline.
    """

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self.stalled = False
        self._requests: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any],
                                                threading.Event] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.timeout_s is None:
            return fn(*args)
        if self.stalled:
            raise PolicyStalled("an earlier call is still running")
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="policy-call", daemon=True)
            self._thread.start()
        box: dict[str, Any] = {}
        done = threading.Event()
        self._requests.put((fn, args, box, done))
        if not done.wait(self.timeout_s):
            self.stalled = True
            raise PolicyStalled(f"no answer within policy_timeout_s={self.timeout_s:g} s")
        if "error" in box:
            raise box["error"]
        return box["result"]

    def _serve(self) -> None:
        while (request := self._requests.get()) is not None:
            fn, args, box, done = request
            try:
                box["result"] = fn(*args)
            except BaseException as error:  # handed to the waiting caller, which decides
                box["error"] = error
            done.set()

    def close(self) -> None:
        """Let the worker thread end (a stalled one ends, if ever, after its call returns)."""
        if self._thread is not None:
            self._requests.put(None)
            self._thread = None


def _policy_call(call: PolicyCaller, what: str, fn: Callable[..., Any], *args: Any) -> tuple[str | None, str | None]:
    """(end reason, message) if the policy call stalled or failed unexpectedly, else (None, None)."""
    try:
        call(fn, *args)
    except PolicyStalled as error:
        return END_POLICY_TIMEOUT, f"policy {what} stalled: {error}"
    except RemixError:
        raise  # a setup problem with its own actionable message: the trial says nothing about the policy
    except Exception as error:
        return END_POLICY_ERROR, f"policy {what} raised {type(error).__name__}: {_first_line(error)}"
    return None, None


def _policy_act(call: PolicyCaller, policy: Policy, observation: Observation) -> tuple[str | None, str | None, np.ndarray]:
    box: list[np.ndarray] = []
    reason, message = _policy_call(call, "act", lambda: box.append(np.asarray(policy.act(observation), dtype=np.float32)))
    return reason, message, (box[0] if box else np.zeros(0, np.float32))


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else "(no message)"


def _predicate(robot: Robot) -> bool | None:
    verdict = robot.check_success()
    return None if verdict is None else bool(verdict)


def _end_reason(robot: Robot, monitor: StopKeyMonitor, elapsed: float, steps: int,
                settings: RolloutSettings) -> str | None:
    if monitor.triggered.is_set():
        return END_OPERATOR
    if robot.check_success() is True:
        return END_SUCCESS_PREDICATE
    if elapsed >= settings.time_limit_s:
        return END_TIME_LIMIT
    if settings.max_steps is not None and steps >= settings.max_steps:
        return END_MAX_STEPS
    return None


def describe(result: RolloutResult) -> str:
    """One line for the operator and the notes column."""
    parts = [f"{len(result.steps)} steps in {result.duration_s:.1f}s, ended by {result.end_reason.replace('_', ' ')}"]
    if result.late_steps:
        parts.append(f"{result.late_steps} late steps")
    if result.watchdog_trips:
        parts.append(f"{result.watchdog_trips} watchdog holds")
    if result.fault:
        parts.append(f"fault: {result.fault}")
    return "; ".join(parts)


def stop_keys_text(keys: Sequence[str]) -> str:
    return " or ".join("space" if k == " " else repr(k) for k in keys)
