"""remix-eval's settings as a typed dataclass (its defaults come from SessionSettings and RolloutSettings).

A module of its own because those import the policy stack, which remix-report must not load.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from eval.rollout import RolloutSettings
from eval.session import SessionSettings

_SESSION = {f.name: f.default for f in fields(SessionSettings)}
_ROLLOUT = RolloutSettings()


@dataclass(frozen=True)
class EvalCommand:
    """remix-eval's settings (defaults from eval.session.SessionSettings and eval.rollout.RolloutSettings)."""

    robot: Any = None  # the robot config group: robot=mock|sim|widowx|franka|remote
    operator: Any = None  # the operator group: operator=terminal|scripted
    out: str = "evals/trials.sqlite"  # SQLite trial log (WAL); videos and goal images go to <name>_media/ beside it
    session: str | None = None  # session name; None = <robot name>-<UTC date>; same name = resume
    tasks: tuple[str, ...] = ("task",)  # task names, in run order
    policies: Any = None  # {name: checkpoint dir | 'replay:<store>#<episode>' | 'scripted:expert' | 'tcp://host:port'}
    policy_options: Any = None  # extra keyword options for load_policy (e.g. device: cuda)
    trials: int = _SESSION["trials"]  # scored trials per task and policy (the paper: 10)
    seed: int = _SESSION["seed"]  # seeds the blind order, blind labels and per-trial seeds
    blind: bool = _SESSION["blind"]  # interleave policies in random order, shown only as "policy #k"
    goal_images: Any = None  # {task: goal.png or a remix-goal folder} to use instead of capturing a goal
    max_fault_retries: int = _SESSION["max_fault_retries"]  # reruns of a faulted trial before skipping it
    ask_notes: bool = _SESSION["ask_notes"]  # ask the operator for a note after each real-robot trial
    video: bool = _SESSION["record_video"]  # record a video of every trial (frames at the control rate)
    video_cameras: tuple[str, ...] = _ROLLOUT.video_cameras  # cameras tiled into the video; () = all
    time_limit_s: float = _ROLLOUT.time_limit_s  # per trial (the paper: up to 100 s)
    max_steps: int | None = _ROLLOUT.max_steps  # optional step cap per trial
    policy_timeout_s: float | None = _ROLLOUT.policy_timeout_s  # one policy call's deadline; past it: arm stopped,
    # trial logged as a failure (policy_timeout), session ends; null = no deadline
    sim_time: bool = _SESSION["sim_time"]  # on a simulator: time limit in simulated seconds, no sleeping
    max_goal_steps: int = _SESSION["max_goal_steps"]  # simulator goal images: expert steps allowed
    max_goal_scenes: int = _SESSION["max_goal_scenes"]  # simulator: scenes tried per trial for a solvable goal
    stop_keys: tuple[str, ...] = _ROLLOUT.stop_keys  # operator keys that halt the arm at once and end the trial
    progress: bool = True  # rich progress bar on stderr
