"""Console scripts: `remix-eval` (run or resume an evaluation session) and `remix-report` (tables, plots)."""

from __future__ import annotations

import sqlite3
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from eval.report import build_report, compare, parse_time_bound, to_markdown, write_report
from eval.trial_log import TrialLog
from remix.common.cli import as_str_list, as_str_mapping, hydra_main, operator_from_config, to_plain
from remix.common.config import register
from remix.common.errors import ConfigError, RemixError


@dataclass(frozen=True)
class ReportCommand:
    """remix-report's settings."""

    db: str | None = None  # the .sqlite written by remix-eval (first positional argument)
    out: str | None = None  # output folder; None = <db folder>/report
    sessions: tuple[str, ...] = ()  # only these session names (() = all)
    robots: tuple[str, ...] = ()  # only these robots (() = all)
    since: str | None = None  # only trials started on/after this date (YYYY-MM-DD or ISO time, UTC)
    until: str | None = None  # only trials started before the end of this date
    formats: tuple[str, ...] = ("md", "csv", "tex")  # any of md, csv, tex
    plot: bool = True  # success_summary.png (paper Fig. 2 style) and success_per_task.png
    compare: tuple[str, ...] = ()  # [policy_a, policy_b]: difference in success rate with a 95% CI


register("report_schema", ReportCommand)


def goal_source(task: str, path: str) -> str:
    """What `goal_images={task: path}` points at, as `robots.goals.load_goal` reads it: an image file, the task's
    goal folder written by `remix-goal` (`goals/<task>`, holding goal.json), or remix-goal's output root (`goals`).

    Checked before the robot connects, so a wrong path costs no robot start-up."""
    from robots.goals import META_NAME

    given = Path(path).expanduser()
    if given.is_file():
        return str(given)
    if given.is_dir():
        for folder in (given, given / task):
            if (folder / META_NAME).is_file():
                return str(folder)
        raise RemixError(f"goal folder {path} for task {task!r} holds no {META_NAME} (nor {task}/{META_NAME}); "
                         f"pass an image or a folder written by remix-goal ({task} robot=... out={path})")
    raise RemixError(f"goal image {path} for task {task!r} does not exist; fix goal_images or drop the entry")


def run_eval(cfg: DictConfig) -> int:
    """Build robot, policies and operator from the config, run (or resume) the session, print its table."""
    # The policy stack is imported before any robot connects (see remix.policy: loading it after MuJoCo
    # made an EGL context crashes) and only here, so remix-report starts without torch.
    from eval.rollout import RolloutSettings
    from eval.session import EvalSession, PolicyFailed, SessionSettings
    from remix.policy import load_policy
    from robots.robot import make_robot

    tasks = as_str_list(cfg.tasks, "tasks")
    policy_specs = as_str_mapping(cfg.policies, "policies")
    if not policy_specs:
        raise ConfigError("no policies given; pass policies={name:checkpoint_dir,...} "
                          "(or 'replay:<store>#<episode>', 'scripted:expert', 'tcp://host:port')")
    if cfg.time_limit_s is None or not float(cfg.time_limit_s) > 0:
        raise ConfigError(f"time_limit_s must be a positive number of seconds, got {cfg.time_limit_s}")
    if cfg.policy_timeout_s is not None and not float(cfg.policy_timeout_s) > 0:
        raise ConfigError(f"policy_timeout_s must be a positive number of seconds or null, got {cfg.policy_timeout_s}")
    if cfg.max_steps is not None and int(cfg.max_steps) < 1:
        raise ConfigError(f"max_steps must be >= 1 or null, got {cfg.max_steps}")
    goal_images = {task: goal_source(task, path) for task, path in as_str_mapping(cfg.goal_images, "goal_images").items()}
    robot = make_robot(cfg.robot)
    options = to_plain(cfg.policy_options) or {}
    operator = operator_from_config(cfg.operator)
    name = cfg.session or f"{robot.name}-{datetime.now(timezone.utc):%Y%m%d}"
    settings = SessionSettings(
        name=str(name), tasks=tuple(tasks), trials=int(cfg.trials), seed=int(cfg.seed), blind=bool(cfg.blind),
        operator_name=str(cfg.operator.name or ""), goal_images=goal_images,
        max_fault_retries=int(cfg.max_fault_retries), ask_notes=bool(cfg.ask_notes), record_video=bool(cfg.video),
        sim_time=bool(cfg.sim_time), max_goal_steps=int(cfg.max_goal_steps), max_goal_scenes=int(cfg.max_goal_scenes),
        rollout=RolloutSettings(time_limit_s=float(cfg.time_limit_s), stop_keys=tuple(as_str_list(cfg.stop_keys, "stop_keys")),
                                max_steps=None if cfg.max_steps is None else int(cfg.max_steps),
                                policy_timeout_s=None if cfg.policy_timeout_s is None else float(cfg.policy_timeout_s),
                                video_cameras=tuple(as_str_list(cfg.video_cameras, "video_cameras"))),
    )
    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    config["operator"] = {k: v for k, v in config["operator"].items() if k not in ("answers", "keys")}
    with TrialLog.create(cfg.out) as log, robot:
        # after connecting: a remote simulator only shows its extras (expert_action, set_task) once connected
        policies = {}
        stalled = None
        try:
            for policy_name, spec in policy_specs.items():
                policies[policy_name] = load_policy(spec, robot=robot, **options)
            session = EvalSession(log, robot, policies, policy_specs, operator, settings, config=config,
                                  progress=bool(cfg.progress))
            outcome = session.run()
        except PolicyFailed as failed:
            stalled = failed.policy if failed.stalled else None
            raise
        finally:
            for policy_name, policy in policies.items():
                if policy_name != stalled:  # a stalled policy's call still runs: closing it could hang as well
                    policy.close()
        rows = log.trials(sessions=[outcome.session.name])
        if outcome.session.blind:  # keep the operator blind, e.g. when the session is continued later
            labels = outcome.session.blind_labels
            rows = [replace(r, policy=f"policy #{labels[r.policy]}", policy_spec="") for r in rows]
            print("blind session: policies are shown by their blind label; remix-report shows the names",
                  file=sys.stderr)
        print(to_markdown(build_report(rows)))
        print(f"session {outcome.session.name!r}: {outcome.trials_run} trial(s) run, {outcome.trials_skipped} already done; "
              f"log {log.path}", file=sys.stderr)
        if outcome.unsettled:
            print(f"{len(outcome.unsettled)} trial(s) skipped after repeated robot faults; rerun the same command to retry",
                  file=sys.stderr)
    return 0


def run_report(cfg: DictConfig) -> int:
    """Filter the trial log, write tables and plots, print the Markdown table."""
    if cfg.db is None or str(cfg.db).strip() == "":
        raise ConfigError("no trial database given; run remix-report <path/to/trials.sqlite>")
    sessions, robots = as_str_list(cfg.sessions, "sessions"), as_str_list(cfg.robots, "robots")
    pair = as_str_list(cfg.compare, "compare")
    if pair and len(pair) != 2:
        raise ConfigError(f"compare needs exactly two policy names, e.g. compare=[remix,uniform]; got {pair}")
    since, until = parse_time_bound(cfg.since, end=False), parse_time_bound(cfg.until, end=True)
    try:
        return _report(cfg, sessions, robots, pair, since, until)
    except sqlite3.DatabaseError as error:  # damage that the open-time checks could not see
        raise RemixError(f"cannot read trial database {cfg.db} ({error}); restore it from a backup copy") from None


def _report(cfg: DictConfig, sessions: list[str], robots: list[str], pair: list[str], since: float | None,
            until: float | None) -> int:
    with TrialLog.open(cfg.db) as log:
        unknown = sorted(set(sessions) - set(log.session_names()))
        if unknown:
            raise RemixError(f"session(s) {unknown} not in {log.path} (has {log.session_names()}); fix sessions=")
        rows = log.trials(sessions=sessions, robots=robots, since=since, until=until)
        if not rows:
            raise RemixError(f"no trials in {log.path} match the filters (sessions={sessions or 'all'}, "
                             f"robots={robots or 'all'}, since={cfg.since}, until={cfg.until}); widen them")
        report = build_report(rows)
        comparisons = [compare(report, pair[0], pair[1])] if pair else []
        out = Path(cfg.out).expanduser() if cfg.out else log.root / "report"
        written = write_report(report, out, as_str_list(cfg.formats, "formats"), comparisons, plot=bool(cfg.plot))
    print(to_markdown(report, comparisons))
    print(f"{report.num_trials} trials; wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


EVAL_USAGE = """remix-eval: run goal-conditioned policies on a robot, log every trial, print the success table.

Usage:
  remix-eval robot=widowx|franka|sim|mock|remote tasks=[a,b] policies={name:checkpoint_dir,...} [trials=10]
             [blind=true] [session=NAME] [out=evals/trials.sqlite] [operator=terminal|scripted]
Policies: a checkpoint dir, 'replay:<store>#<episode>', 'scripted:expert' (sim) or 'tcp://host:port'.
Per task a goal image is taken (or goal_images={task: png or remix-goal folder}); per trial the operator labels
success / failure / robot fault (the sim labels itself). Rerunning the same session resumes where it stopped.
"""

REPORT_USAGE = """remix-report: success rates per task x policy from the trial log, as Markdown, CSV, LaTeX and plots.

Usage:
  remix-report DB [sessions=[..]] [robots=[..]] [since=YYYY-MM-DD] [until=..] [compare=[a,b]] [out=DIR]
Cells are successes/scored trials with a Wilson 95% interval; the summary is mean +- s.e. across tasks.
"""

def _eval_schema() -> type:
    from eval.command import EvalCommand  # imports the policy stack: only when remix-eval runs

    return EvalCommand


eval_main = hydra_main("eval", usage=EVAL_USAGE, schema=_eval_schema)(run_eval)
report_main = hydra_main("report", positional=("db",), usage=REPORT_USAGE)(run_report)
