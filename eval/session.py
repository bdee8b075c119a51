"""An evaluation session: tasks x policies x trials on one robot, every trial logged when it ends.

The trial plan is a pure function of (tasks, policies, trials, blind, seed), so rerunning a session
walks the same plan and skips what the log already holds: a trial index is settled once it has a
scored outcome (success/failure) or has faulted `max_fault_retries + 1` times. A robot-fault trial
is retried under the same index (attempt + 1), because a fault says nothing about the policy.

Blind mode interleaves the policies in a fresh random order for every round of every task and shows
each only as "policy #k" (k from a random permutation stored with the session), so the operator who
labels the trial cannot know which method ran.

Media live beside the database: `<db folder>/<db name>_media/<session>/goals/<task>/` (a PNG per camera
and goal.json, as written by `remix-goal`) and `.../videos/<task>/<policy>-trial<NN>-a<attempt>.mp4`.
"""

from __future__ import annotations

import random
import re
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from eval.rollout import (
    END_POLICY_TIMEOUT,
    END_ROBOT_FAULT,
    POLICY_ENDS,
    RolloutResult,
    RolloutSettings,
    describe,
    run_rollout,
    stop_keys_text,
)
from eval.trial_log import SCORED_OUTCOMES, Session, SessionSpec, TrialLog, TrialRecord
from eval.video import TrialVideo, remove_partial_videos
from remix.common.errors import RemixError
from remix.common.operator_input import OperatorInput
from remix.policy import Policy
from robots.goals import META_NAME, capture_goal, load_goal, save_goal, task_dir
from robots.robot import Observation, Robot, RobotFault
from robots.sim_interface import SimulatedRobot

LABEL_CHOICES = {"s": "success", "f": "failure", "r": "robot_fault"}


MAX_TRIALS = 10_000  # per task and policy: the trial plan is built up front


@dataclass(frozen=True)
class PlannedTrial:
    task: str
    policy: str
    trial_index: int  # 0-based within its (task, policy) cell


def plan_trials(tasks: Sequence[str], policies: Sequence[str], trials: int, blind: bool, seed: int) -> list[PlannedTrial]:
    """The run order. Not blind: task by task, policy by policy. Blind: per task and round, shuffled policies."""
    plan = []
    for task in tasks:
        if not blind:
            plan += [PlannedTrial(task, p, i) for p in policies for i in range(trials)]
            continue
        for i in range(trials):
            order = list(policies)
            random.Random(_stable_hash(seed, "order", task, i)).shuffle(order)
            plan += [PlannedTrial(task, p, i) for p in order]
    return plan


def blind_labels(policies: Sequence[str], seed: int) -> dict[str, int]:
    """A random 1..K label per policy, so "policy #1" is not simply the first one configured."""
    labels = list(range(1, len(policies) + 1))
    random.Random(_stable_hash(seed, "labels")).shuffle(labels)
    return dict(zip(policies, labels))


def trial_seed(session_seed: int, task: str, trial_index: int, attempt: int) -> int:
    """The scene seed of a trial: independent of run order (a resumed session reuses it) and of the policy,
    so every policy meets the same scenes at the same trial index (the paper's fixed placements)."""
    return _stable_hash(session_seed, task, trial_index, attempt) % (2**31)


def _stable_hash(*parts: object) -> int:
    return zlib.crc32("\x1f".join(map(str, parts)).encode())


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


@dataclass(frozen=True)
class SessionSettings:
    """Everything that shapes a session besides the robot, policies and operator."""

    name: str
    tasks: tuple[str, ...]
    trials: int = 10
    seed: int = 0
    blind: bool = False
    operator_name: str = ""
    goal_images: Mapping[str, str] | None = None  # task -> PNG or remix-goal folder to load instead of capturing
    max_fault_retries: int = 2
    ask_notes: bool = True
    record_video: bool = True
    sim_time: bool = True  # on a simulator (it labels trials itself) count time in simulated seconds
    max_goal_steps: int = 500  # simulator goal images: expert steps allowed to reach the goal
    max_goal_scenes: int = 5  # simulator: scenes tried per trial until the expert solves one (it defines the goal)
    rollout: RolloutSettings = RolloutSettings()

    def __post_init__(self) -> None:
        if not self.tasks:
            raise RemixError("no tasks given; pass tasks=[task_a,task_b]")
        for task in self.tasks:
            task_dir(".", task)  # task names name goal and video folders: reject odd ones before anything runs
        if len(set(self.tasks)) != len(self.tasks):
            raise RemixError(f"tasks {list(self.tasks)} repeat a name; give each task once")
        if not 1 <= self.trials <= MAX_TRIALS:
            raise RemixError(f"trials must be in 1..{MAX_TRIALS} per task and policy, got {self.trials}")
        if self.max_fault_retries < 0:
            raise RemixError(f"max_fault_retries must be >= 0, got {self.max_fault_retries}")
        unknown = sorted(set(self.goal_images or {}) - set(self.tasks))
        if unknown:
            raise RemixError(f"goal_images names task(s) {unknown} that are not in tasks={list(self.tasks)}; fix the names")


class PolicyFailed(RemixError):
    """A policy stalled past its deadline or raised mid-trial: that trial is logged, the session ends here."""

    def __init__(self, policy: str, stalled: bool, message: str) -> None:
        super().__init__(message)
        self.policy = policy
        self.stalled = stalled  # its call may still be running: closing it could block as well


@dataclass(frozen=True)
class SessionOutcome:
    session: Session
    resumed: bool
    trials_run: int
    trials_skipped: int
    unsettled: tuple[PlannedTrial, ...]  # gave up after repeated robot faults


class EvalSession:
    """Runs (or resumes) one session; see the module docstring."""

    def __init__(self, log: TrialLog, robot: Robot, policies: Mapping[str, Policy], policy_specs: Mapping[str, str],
                 operator: OperatorInput, settings: SessionSettings, config: Mapping[str, object] | None = None,
                 progress: bool = True) -> None:
        if not policies:
            raise RemixError("no policies given; pass policies={name: checkpoint_or_spec, ...}")
        if set(policies) != set(policy_specs):
            raise ValueError("policies and policy_specs must name the same policies")
        self.log = log
        self.robot = robot
        self.policies = dict(policies)
        self.operator = operator
        self.settings = settings
        self.progress = progress
        if isinstance(robot, SimulatedRobot):  # a simulator with built-in tasks: every eval task must be one of them
            for task in settings.tasks:  # (checked before the session is saved, so a typo leaves nothing behind)
                robot.set_task(task)
        spec = SessionSpec(
            name=settings.name, robot=robot.name, control_mode=robot.control_mode.value, control_hz=robot.control_hz,
            tasks=tuple(settings.tasks), policies=dict(policy_specs), trials_per_cell=settings.trials,
            time_limit_s=settings.rollout.time_limit_s, seed=settings.seed, blind=settings.blind,
            operator=settings.operator_name, config=dict(config or {}),
        )
        earlier = log.session(settings.name)
        self.session, self.resumed = log.start_session(spec, blind_labels(list(policies), settings.seed))
        if earlier is not None and not self.resumed:  # it ended before its first trial: nothing of it was kept
            operator.say(f"session {settings.name!r} had no finished trial; starting it afresh with these settings")
        self.media_dir = log.root / f"{log.path.stem}_media" / slug(self.session.name)
        self._goals: dict[str, Observation] = {}
        self._is_sim: bool | None = None
        self._count = (0, 0)  # (this trial's number, trials in the plan) for the operator's prompts

    # ------------------------------------------------------------------------------------------- naming
    def shown_name(self, policy: str) -> str:
        """What the operator sees: the name, or "policy #k" in blind mode."""
        return f"policy #{self.session.blind_labels[policy]}" if self.session.blind else policy

    def video_path(self, planned: PlannedTrial, attempt: int) -> Path:
        return (self.media_dir / "videos" / slug(planned.task)
                / f"{slug(planned.policy)}-trial{planned.trial_index + 1:02d}-a{attempt}.mp4")

    # ------------------------------------------------------------------------------------------- running
    def run(self) -> SessionOutcome:
        removed = remove_partial_videos(self.media_dir)
        if removed:
            self.operator.say(f"dropped {removed} half-written video(s) from an interrupted run")
        plan = plan_trials(self.session.tasks, [p for p, _ in self.session.policies], self.session.trials_per_cell,
                           self.session.blind, self.session.seed)
        attempts = self.log.trial_attempts(self.session)
        todo = [t for t in plan if not self._settled(attempts.get((t.task, t.policy, t.trial_index), []))]
        skipped = len(plan) - len(todo)
        if self.resumed:
            self.operator.say(f"resuming session {self.session.name!r}: {skipped} of {len(plan)} trials already done")
        unsettled: list[PlannedTrial] = []
        run = 0
        self._count = (skipped, len(plan))
        with self._progress_bar(len(plan), skipped) as advance:
            for planned in todo:
                self._count = (self._count[0] + 1, len(plan))
                outcomes = list(attempts.get((planned.task, planned.policy, planned.trial_index), []))
                while not self._settled(outcomes):
                    outcome = self._run_trial(planned, attempt=len(outcomes))
                    outcomes.append(outcome)
                    run += 1
                if outcomes[-1] not in SCORED_OUTCOMES:
                    unsettled.append(planned)
                    self.operator.say(f"{planned.task} / {self.shown_name(planned.policy)} trial {planned.trial_index + 1}: "
                                      f"{len(outcomes)} robot faults in a row; skipping it (check the robot)")
                advance()
        return SessionOutcome(self.session, self.resumed, run, skipped, tuple(unsettled))

    def _settled(self, outcomes: Sequence[str]) -> bool:
        return any(o in SCORED_OUTCOMES for o in outcomes) or len(outcomes) > self.settings.max_fault_retries

    @contextmanager
    def _progress_bar(self, total: int, done: int) -> Iterator[Callable[[], None]]:
        """A rich progress bar for unattended (simulator) sessions; with an operator at a terminal the
        prompts carry the count instead, so a redrawing bar never fights with typed answers."""
        if not (self.progress and self.is_sim()):
            yield lambda: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=Console(file=sys.stderr)) as progress:
            task_id = progress.add_task("trials", total=total, completed=done)
            yield lambda: progress.advance(task_id)

    def is_sim(self) -> bool:
        """A robot whose success predicate answers (not None) is a simulator: it labels trials itself."""
        if self._is_sim is None:
            self._is_sim = self.robot.check_success() is not None
        return self._is_sim

    def _run_trial(self, planned: PlannedTrial, attempt: int) -> str:
        if isinstance(self.robot, SimulatedRobot):
            self.robot.set_task(planned.task)
        seed = trial_seed(self.session.seed, planned.task, planned.trial_index, attempt)
        shown = self.shown_name(planned.policy)
        title = (f"[{self._count[0]}/{self._count[1]}] {planned.task} / {shown} / "
                 f"trial {planned.trial_index + 1}/{self.session.trials_per_cell}" + (f" (retry {attempt})" if attempt else ""))
        # before the trial's reset: capturing a goal means running the expert / arranging the goal scene
        if self._scene_goals(planned.task):
            seed, goal, goal_png = self.scene_goal(planned.task, seed)
        else:
            goal, goal_png = self.goal(planned.task), self.goal_path(planned.task)
        assert goal_png is not None
        _seed_everything(seed, self.policies[planned.policy])
        observation = self._prepare(title, seed, planned.task)
        video_path = self.video_path(planned, attempt)
        video = TrialVideo(video_path, self.robot.control_hz) if self.settings.record_video else None
        rollout = replace(self.settings.rollout, sim_time=self.is_sim() and self.settings.sim_time)
        try:
            result = run_rollout(self.robot, self.policies[planned.policy], goal, observation, self.operator,
                                 rollout, video)
        except BaseException:
            if video is not None:
                video.discard()
            raise
        outcome, labelled_by, notes = self._label(title, result)
        written = video.finish() if video is not None else None
        self.log.record_trial(TrialRecord(
            session_id=self.session.id, task=planned.task, policy=planned.policy, trial_index=planned.trial_index,
            attempt=attempt, seed=seed, started_at=result.started_at, ended_at=result.ended_at,
            steps=len(result.steps), outcome=outcome, end_reason=result.end_reason, labelled_by=labelled_by,
            operator=self.settings.operator_name, notes=notes,
            goal_image_path=self.log.relative(goal_png),
            video_path=self.log.relative(written) if written is not None else None,
        ), result.steps)
        self.operator.say(f"{title}: {outcome.replace('_', ' ')} ({describe(result)})")
        if result.end_reason in POLICY_ENDS:  # the policy's state is unknown (a stalled call still runs): stop here
            raise PolicyFailed(planned.policy, stalled=result.end_reason == END_POLICY_TIMEOUT, message=(
                f"{title}: {result.fault}; arm stopped, trial logged as a failure ({result.end_reason}). Fix the "
                "policy (or raise policy_timeout_s), then rerun the same command to resume"))
        return outcome

    def _prepare(self, title: str, seed: int, task: str) -> Observation:
        """Reset; on a real robot the operator puts the objects back at the goal's start placements (the
        paper's protocol: every trial starts where the goal's demonstration started). Returns the first
        observation."""

        def prepare() -> Observation:
            observation = self.robot.reset(seed=seed)
            if self.is_sim():
                self.operator.say(f"{title}: running")
                return observation
            start = self.start_path(task)
            shown = f" (as in {start})" if start is not None else ""
            self.operator.ask(f"{title}: reset the scene to the goal's start placements{shown}, then press Enter "
                              f"to start (stop key {stop_keys_text(self.settings.rollout.stop_keys)} ends the trial)",
                              default="")
            return self.robot.get_observation()

        return self._retry_faults(title, prepare)

    def _retry_faults(self, what: str, step: Callable[[], Observation]) -> Observation:
        """Run a robot step outside a trial; a recovered fault there scores nothing, so just try again."""
        for tries_left in range(self.settings.max_fault_retries, -1, -1):
            try:
                return step()
            except RobotFault as fault:
                if not tries_left:
                    raise RemixError(f"{what}: the robot keeps faulting outside a trial ({fault}); fix the robot, "
                                     "then rerun the same command to resume") from None
                self.operator.say(f"{what}: robot fault while resetting ({fault}); trying again")
        raise AssertionError("unreachable")

    def _label(self, title: str, result: RolloutResult) -> tuple[str, str, str]:
        """(outcome, who labelled it, notes). A fault labels itself; the sim's predicate labels sim trials."""
        if result.end_reason == END_ROBOT_FAULT:
            outcome, labelled_by = "robot_fault", "robot"
        elif result.end_reason in POLICY_ENDS:  # the policy did not produce its actions: its trial failed
            outcome, labelled_by = "failure", "harness"
        elif result.success_predicate is not None:
            outcome, labelled_by = ("success" if result.success_predicate else "failure"), "sim"
        else:
            answer = self.operator.ask(
                f"{title}: {describe(result)}. Outcome? s=success f=failure r=robot fault", choices=tuple(LABEL_CHOICES))
            outcome, labelled_by = LABEL_CHOICES[answer], "operator"
        notes = result.fault or ""
        if self.settings.ask_notes and not self.is_sim() and result.end_reason not in POLICY_ENDS:
            note = self.operator.ask(f"{title}: note (Enter for none)", default="").strip()
            notes = "; ".join(n for n in (notes, note) if n)
        return outcome, labelled_by, notes

    # ------------------------------------------------------------------------------------------- goals
    @property
    def goals_root(self) -> Path:
        return self.media_dir / "goals"

    def start_path(self, task: str) -> Path | None:
        """The image of the start placements captured with `task`'s goal (None for an imported goal)."""
        cameras = list(self.robot.observation_spec.cameras)
        path = self.goals_root / slug(task) / "start" / f"{cameras[0]}.png" if cameras else None
        return path if path is not None and path.exists() else None

    def _scene_goals(self, task: str) -> bool:
        """Simulators make each trial's goal from the trial's own scene, unless a goal image was given."""
        return self.is_sim() and isinstance(self.robot, SimulatedRobot) and task not in (self.settings.goal_images or {})

    def scene_goal(self, task: str, seed: int) -> tuple[int, Observation, Path]:
        """(scene seed, goal, goal PNG) for a simulator trial: the goal is the last frame of the scripted
        expert's successful execution from this very scene, the same definition training uses (a demo's
        last frame). A scene the expert cannot solve is replaced by the next one (derived from the seed).
        Goals are kept per scene under goals/<task>/scene-<seed>/, so every policy and a resumed session
        reuse them."""
        assert isinstance(self.robot, SimulatedRobot)
        cameras = dict(self.robot.observation_spec.cameras)
        for _ in range(self.settings.max_goal_scenes):
            folder = self.goals_root / slug(task) / f"scene-{seed}"
            if (folder / META_NAME).exists():
                return seed, load_goal(folder, cameras), folder / f"{next(iter(cameras))}.png"
            goal = self._retry_faults(f"goal of {task} scene {seed}", lambda seed=seed: self._expert_goal(seed))
            if goal is not None:
                record = save_goal(folder.parent, folder.name, goal, self.robot.name, source="expert", overwrite=True,
                                   extra={"session": self.session.name, "task": task, "seed": seed})
                return seed, goal, record.path / f"{next(iter(cameras))}.png"
            self.operator.say(f"the scripted expert did not solve {task} on scene {seed}; taking another scene")
            seed = _stable_hash(seed, "next scene") % (2**31)
        raise RemixError(f"the scripted expert failed {task} on {self.settings.max_goal_scenes} scenes in a row; "
                         "check the task, or raise max_goal_steps")

    def _expert_goal(self, seed: int) -> Observation | None:
        robot = self.robot
        assert isinstance(robot, SimulatedRobot)
        self.robot.reset(seed=seed)
        for _ in range(self.settings.max_goal_steps):
            if robot.check_success():
                return self.robot.get_observation()
            self.robot.send_action(robot.expert_action())
        return self.robot.get_observation() if robot.check_success() else None

    def goal_path(self, task: str) -> Path | None:
        """The goal PNG (first camera) recorded with every trial of `task`."""
        return self.log.goal_image(self.session, task)

    def goal(self, task: str) -> Observation:
        """The task's goal: kept from earlier in this session, imported from goal_images, or captured.

        Goals are saved with `robots.goals` (one folder per task with a PNG per camera and goal.json) under
        this session's media folder, so a resumed session reuses exactly the goal its trials saw.
        """
        if task in self._goals:
            return self._goals[task]
        cameras = dict(self.robot.observation_spec.cameras)
        if not cameras:
            raise RemixError(f"robot {self.robot.name!r} has no camera; a goal-conditioned eval needs one")
        stored = self.goal_path(task)
        source = (self.settings.goal_images or {}).get(task)
        if stored is not None and (stored.parent / META_NAME).exists():
            goal = load_goal(stored.parent, cameras)
        else:
            if source is not None:
                goal, how = load_goal(source, cameras), f"file:{source}"
            else:
                use_expert = isinstance(self.robot, SimulatedRobot)
                if not use_expert:
                    self._capture_start(task)
                goal, how = self._retry_faults(f"goal image for {task}", lambda: capture_goal(
                    self.robot, task, self.operator, use_expert=use_expert, max_expert_steps=self.settings.max_goal_steps,
                    seed=_stable_hash(self.session.seed, "goal", task) % (2**31)))
            record = save_goal(self.goals_root, task, goal, self.robot.name, source=how, overwrite=True,
                               extra={"session": self.session.name})
            self.log.set_goal_image(self.session, task, record.path / f"{next(iter(cameras))}.png")
        self._goals[task] = goal
        return goal


    def _capture_start(self, task: str) -> None:
        """Real robots: record the start placements the goal is reached from; every trial is reset to them."""
        self._retry_faults(f"start placements for {task}", lambda: self.robot.reset())
        self.operator.ask(f"task {task!r}: place the objects at the start placements every trial will start from, "
                          "then press Enter to photograph them", default="")
        save_goal(self.goals_root / slug(task), "start", self.robot.get_observation(), self.robot.name,
                  source="operator", overwrite=True, extra={"session": self.session.name, "task": task, "role": "start"})
        self.operator.say(f"task {task!r}: now do the task from there (move the objects to the goal)")


def _seed_everything(seed: int, policy: Policy) -> None:
    """Seed what a policy may sample from (diffusion noise), so the logged seed replays the trial.

    A policy with its own `seed` (the diffusion policy re-seeds its generator from it at every reset)
    gets the trial's seed; otherwise every trial would draw the same noise.
    """
    if isinstance(getattr(policy, "seed", None), int):
        policy.seed = seed  # type: ignore[attr-defined]
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
