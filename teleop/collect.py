"""The demo-collection session behind `remix-collect`: reset, teleoperate, keep or discard, repeat.

Per attempt the robot resets, the operator drives it with a teleop device, and the episode ends with
an event (keep / discard / re-record from the headset or keys), the step limit, the operator stop key
or a robot fault. Kept episodes are written to the episode store by the recorder's worker thread, with
task, domain, operator, device, start/end timestamps and the scene seed (-1: none). A kept
demo ends with the final scene (recorded with a hold action), the goal image training pairs it with. On a
simulator the session first switches the sim to the collected task; the count of kept demos for the task is read back
from the store, so a rerun continues where the last one stopped ("12/25 kept").

Control timing: one action per control period on a fixed clock. A rate-mode robot (Franka, 10 Hz)
needs that clock; a blocking robot (WidowX) already takes about a period per move, and a simulated one
that returns early is slowed to real time so the operator's hand and the arm stay in step. Only steps where the operator is driving are recorded
(`record_idle` keeps the others), so clutch pauses do not become "stand still" demonstrations.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from remix.common.errors import ConfigError, StoreError
from remix.common.operator_input import OperatorInput
from remix.common.rate import Rate
from remix.data import EpisodeStore
from robots.robot import Robot, RobotFault
from robots.safety import StopKeyMonitor
from robots.sim_interface import SimulatedRobot
from teleop.device import TeleopDevice, TeleopEvent, hold_action
from teleop.preview import CameraPreview
from teleop.recorder import EpisodeRecorder


class Outcome(str, Enum):
    KEPT = "kept"
    DISCARDED = "discarded"
    RERECORD = "rerecord"
    FAULT = "fault"
    QUIT = "quit"


@dataclass(frozen=True)
class CollectSettings:
    """What to collect and the session's limits (configs/collect.yaml)."""

    task: str
    num_demos: int = 25
    operator: str = "unknown"
    domain: str | None = None  # Re-Mix domain of these demos; defaults to the task
    max_steps: int = 600  # control steps per attempt (idle ones included); then the operator decides
    min_steps: int = 3  # a kept episode shorter than this is discarded (an accidental press)
    record_idle: bool = False
    stop_keys: tuple[str, ...] = ("s", " ")
    seed: int | None = None  # sim robots: scene seed of attempt i is seed + i
    # no human drives (teleop=sim_expert): run as fast as the robot steps (no pacing to the control clock),
    # and discard an attempt that reaches max_steps instead of asking
    unattended: bool = False

    def __post_init__(self) -> None:
        if not self.task or not self.task.strip():
            raise ConfigError("collect needs a task name: remix-collect task=<name>")
        if self.num_demos < 1:
            raise ConfigError(f"num_demos must be at least 1, got {self.num_demos}")
        if self.max_steps < 1 or self.min_steps < 1 or self.min_steps > self.max_steps:
            raise ConfigError(f"need 1 <= min_steps <= max_steps, got {self.min_steps} and {self.max_steps}")

    @property
    def domain_name(self) -> str:
        return self.domain or self.task


@dataclass
class CollectResult:
    kept: int
    target: int
    kept_episodes: list[int] = field(default_factory=list)  # store indices written by this session
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o is outcome)


def open_demo_store(path: str | Path, robot: Robot) -> EpisodeStore:
    """Open the demo store for appending, creating it for this robot when it does not exist yet."""
    path = Path(path)
    cameras = dict(robot.observation_spec.cameras)
    if not path.exists():
        return EpisodeStore.create(
            path, fps=robot.control_hz, robot=robot.name, action_names=robot.action_spec.names,
            gripper_dims=(robot.action_spec.gripper_index,), cameras=cameras,
            state_names=robot.observation_spec.state_names,
        )
    store = EpisodeStore.open(path, mode="a")
    mismatch = []
    if store.robot != robot.name:
        mismatch.append(f"robot {store.robot!r} vs {robot.name!r}")
    if tuple(store.action_names) != tuple(robot.action_spec.names):
        mismatch.append(f"actions {list(store.action_names)} vs {list(robot.action_spec.names)}")
    if {k: tuple(v) for k, v in store.cameras.items()} != {k: tuple(v) for k, v in cameras.items()}:
        mismatch.append(f"cameras {store.cameras} vs {cameras}")
    if mismatch:
        raise StoreError(f"{path} holds demos of another setup ({'; '.join(mismatch)}); choose a new store path")
    return store


def count_kept(store: EpisodeStore, task: str) -> int:
    """Demos of `task` already in the store (a rerun continues the count)."""
    if store.num_episodes == 0 or "task" not in store.fields:
        return 0
    return int(np.sum(store.field("task") == task))


def next_attempt(store: EpisodeStore, base_seed: int | None) -> int:
    """The first attempt of this run: after the highest scene seed already stored (each run used to restart
    at `base_seed`, so a rerun on the sim recorded byte-identical demos)."""
    if base_seed is None or store.num_episodes == 0 or "seed" not in store.fields:
        return 0
    used = np.asarray(store.field("seed"), dtype=np.int64)
    used = used[used >= base_seed]
    return int(used.max()) - base_seed + 1 if len(used) else 0


class DemoCollector:
    """Runs a collection session; see the module docstring."""

    def __init__(self, robot: Robot, device: TeleopDevice, store: EpisodeStore, operator: OperatorInput,
                 settings: CollectSettings, on_episode_start: Sequence[Callable[[], None]] = (),
                 preview: CameraPreview | None = None, clock: Callable[[], float] = time.monotonic,
                 progress: bool = False) -> None:
        clash = device.keys & set(settings.stop_keys)
        if clash:
            raise ConfigError(f"keys {sorted(clash)} are both stop keys and teleop keys; change stop_keys or the "
                              "teleop key bindings")
        self.robot = robot
        self.device = device
        self.store = store
        self.operator = operator
        self.settings = settings
        self.on_episode_start = list(on_episode_start)
        self.preview = preview
        self.clock = clock
        self.progress = progress
        self.loop_times: list[float] = []  # seconds the loop thread spent per step (excluding the wait)

    def run(self) -> CollectResult:
        """Collect until `num_demos` are kept (or the operator quits); closes the store when done."""
        s = self.settings
        if isinstance(self.robot, SimulatedRobot):  # the sim must perform the task the demos are labelled with
            self.robot.set_task(s.task)
        result = CollectResult(kept=count_kept(self.store, s.task), target=s.num_demos)
        if result.kept >= s.num_demos:
            self.operator.say(f"{result.kept}/{s.num_demos} kept for task {s.task!r}: nothing left to collect")
            self.store.close()
            return result
        self.operator.say(f"collecting {s.task!r}: {result.kept}/{s.num_demos} kept so far in {self.store.path}")
        recorder = EpisodeRecorder(self.store)
        base_seed = s.seed if s.seed is not None or not isinstance(self.robot, SimulatedRobot) else 0
        attempt = next_attempt(self.store, base_seed)  # a rerun never replays a scene already recorded
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("kept"),
                       TimeElapsedColumn(), console=Console(stderr=True), disable=not self.progress)
        bar_task = bar.add_task(s.task, total=s.num_demos, completed=result.kept)
        bar.start()
        try:
            while result.kept < s.num_demos:
                seed = None if base_seed is None else base_seed + attempt
                attempt += 1
                outcome, length, started = self._attempt(recorder, seed)
                if outcome is Outcome.KEPT:
                    index = recorder.commit(
                        task=s.task, domain=s.domain_name, operator=s.operator, device=self.device.name,
                        started_at=started, ended_at=time.time(), source="teleop", seed=-1 if seed is None else seed,
                    ).result()  # durable from here on
                    result.kept += 1
                    result.kept_episodes.append(index)
                    bar.update(bar_task, completed=result.kept)
                    self.operator.say(f"{result.kept}/{s.num_demos} kept ({length} steps, episode {index})")
                else:
                    recorder.drop()
                    if outcome is not Outcome.QUIT:
                        self.operator.say(f"{outcome.value}: {result.kept}/{s.num_demos} kept")
                result.outcomes.append(outcome)
                if outcome is Outcome.QUIT:
                    break
        finally:
            recorder.close()
            self.store.close()  # the session was the store's writer: release its writer lock for the next one
            bar.stop()
        self.operator.say(
            f"done: {result.kept}/{s.num_demos} kept; this session {result.count(Outcome.KEPT)} kept, "
            f"{result.count(Outcome.DISCARDED)} discarded, {result.count(Outcome.RERECORD)} re-recorded, "
            f"{result.count(Outcome.FAULT)} robot faults"
        )
        return result

    # ------------------------------------------------------------------------------ one attempt
    def _attempt(self, recorder: EpisodeRecorder, seed: int | None) -> tuple[Outcome, int, float]:
        s = self.settings
        try:
            observation = self.robot.reset(seed=seed)
        except RobotFault as fault:
            self.operator.say(f"robot fault during reset: {fault}")
            return Outcome.FAULT, 0, time.time()
        self.device.begin_episode(observation)
        recorder.begin()
        for callback in self.on_episode_start:
            callback()
        started = time.time()
        recorded = 0
        # the shared fixed-grid loop: a slow blocking move skips ahead instead of bursting to catch up;
        # unattended (scripted) runs go as fast as the robot answers
        rate = None if s.unattended else Rate(self.robot.control_hz)
        connected = True
        gripper = float(observation.state[self.robot.action_spec.gripper_index])
        with StopKeyMonitor(self.operator, self.robot.stop, keys=s.stop_keys) as monitor:
            for _ in range(s.max_steps):
                if monitor.triggered.is_set():
                    return self._after_stop(recorded), recorded, started
                tick_start = self.clock()
                try:
                    if observation is None:
                        observation = self.robot.get_observation()
                    command = self.device.command(observation, monitor.take_keys())
                    if command.connected != connected:
                        connected = command.connected
                        self.operator.say(f"{self.device.name} input back: grip again to move" if connected else
                                          f"{self.device.name} input lost: holding still (wake the headset, check "
                                          "the cable); the episode continues when it is back")
                    if command.event is TeleopEvent.KEEP and recorded:
                        # the final scene closes the demo (with a hold), so its last frame, the goal image
                        # training pairs with every window, shows the task done
                        recorder.add_step(observation, hold_action(gripper))
                        recorded += 1
                    if command.event is not None:
                        return self._decide(command.event, recorded), recorded, started
                    applied = self.robot.send_action(command.action)
                    gripper = float(applied[self.robot.action_spec.gripper_index])
                except RobotFault as fault:
                    self.operator.say(f"robot fault: {fault}; this attempt is dropped")
                    return Outcome.FAULT, recorded, started
                self.device.applied(applied)
                if command.engaged or s.record_idle:
                    recorder.add_step(observation, applied if command.label is None else command.label)
                    recorded += 1
                if self.preview is not None:
                    self.preview.show(observation.images)
                observation = None
                self.loop_times.append(self.clock() - tick_start)
                if rate is not None:
                    rate.sleep()
        if s.unattended:
            return Outcome.DISCARDED, recorded, started
        answer = self.operator.ask(
            f"episode reached {s.max_steps} steps: keep or discard?", choices=["keep", "discard"], default="discard")
        return self._decide(TeleopEvent.KEEP if answer == "keep" else TeleopEvent.DISCARD, recorded), recorded, started

    def _decide(self, event: TeleopEvent, recorded: int) -> Outcome:
        if event is TeleopEvent.RERECORD:
            return Outcome.RERECORD
        if event is TeleopEvent.DISCARD:
            return Outcome.DISCARDED
        if recorded < self.settings.min_steps:
            self.operator.say(f"only {recorded} driven steps (min_steps={self.settings.min_steps}); not kept")
            return Outcome.DISCARDED
        return Outcome.KEPT

    def _after_stop(self, recorded: int) -> Outcome:
        answer = self.operator.ask("stop key: motion halted. keep this demo, discard it, or quit?",
                                   choices=["keep", "discard", "quit"], default="discard")
        if answer == "quit":
            return Outcome.QUIT
        return self._decide(TeleopEvent.KEEP if answer == "keep" else TeleopEvent.DISCARD, recorded)
