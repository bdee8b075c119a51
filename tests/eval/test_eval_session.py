"""Whole evaluation sessions: mock robot with an operator, simulator labelling itself, blind mode,
robot-fault retries and resuming an interrupted session."""

import cv2
import numpy as np
import pytest
from eval_helpers import GOAL, ConstantPolicy, answers_for, write_png

from eval.report import build_report
from eval.rollout import RolloutSettings
from eval.session import EvalSession, PolicyFailed, SessionSettings, plan_trials
from eval.trial_log import TrialLog
from eval.video import read_video_frames
from remix.common.errors import RemixError
from remix.common.operator_input import ScriptedInput
from remix.policy import load_policy
from robots.mock import MockRobot

FORWARD = [0.01, 0, 0, 0, 0, 0, 1]
BACK = [-0.01, 0, 0, 0, 0, 0, 1]
FAST = RolloutSettings(time_limit_s=0.25)


def run(log, robot, policies, answers, **settings):
    operator = ScriptedInput(answers)
    values = dict(name="s1", tasks=("a", "b"), trials=2, rollout=FAST)
    values.update(settings)
    with robot:
        outcome = EvalSession(log, robot, policies, {n: f"spec/{n}" for n in policies}, operator,
                              SessionSettings(**values), progress=False).run()
    return outcome, operator


def test_operator_session_on_the_mock_robot(tmp_path):
    goal_png = write_png(tmp_path / "given_goal.png", (250, 10, 10))
    policies = {"fwd": ConstantPolicy(FORWARD), "back": ConstantPolicy(BACK)}
    # task a: goal loaded from a PNG; task b: captured (one extra answer). fwd succeeds on a, nothing else does.
    answers = answers_for(2, "s", note="clean") + answers_for(2, "f") + answers_for(2, "f", goals=1) + answers_for(2, "f")
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        outcome, operator = run(log, MockRobot(control_hz=20.0), policies, answers, goal_images={"a": str(goal_png)},
                                operator_name="ann")
        assert outcome.trials_run == 8 and outcome.trials_skipped == 0 and not outcome.resumed
        rows = log.trials()
        assert [(r.task, r.policy, r.trial_index, r.outcome) for r in rows] == [
            ("a", "fwd", 0, "success"), ("a", "fwd", 1, "success"), ("a", "back", 0, "failure"), ("a", "back", 1, "failure"),
            ("b", "fwd", 0, "failure"), ("b", "fwd", 1, "failure"), ("b", "back", 0, "failure"), ("b", "back", 1, "failure")]
        assert {r.labelled_by for r in rows} == {"operator"} and {r.operator for r in rows} == {"ann"}
        assert rows[0].notes == "clean" and rows[2].notes == ""
        assert all(r.end_reason == "time_limit" and r.steps >= 3 for r in rows)
        # goal images live beside the database, one folder per task (as remix-goal writes them)
        goal_a = log.resolve(rows[0].goal_image_path)
        assert goal_a == tmp_path / "t_media" / "s1" / "goals" / "a" / "cam0.png" and (goal_a.parent / "goal.json").exists()
        assert np.abs(cv2.imread(str(goal_a))[..., ::-1].astype(int) - [250, 10, 10]).max() <= 2
        goal_b = log.resolve(rows[4].goal_image_path)
        assert goal_b == tmp_path / "t_media" / "s1" / "goals" / "b" / "cam0.png" and goal_b.exists()
        assert np.abs(policies["fwd"].goals[0].images["cam0"].astype(int) - [250, 10, 10]).max() <= 2
        for row in rows:  # a video per trial with one frame per control step plus the first
            assert len(read_video_frames(log.resolve(row.video_path))) == row.steps + 1
        steps = log.step_log(rows[0].id)
        np.testing.assert_allclose(steps["action"][0], FORWARD)
        assert np.all(np.diff(steps["state"][:, 0]) > 0)  # the arm moved forward under the policy
        report = build_report(rows)
        assert report.cell("mock", "a", "fwd").successes == 2 and report.summaries[("mock", "fwd")].across_tasks.mean == 0.5
    assert any("fwd" in p for p in operator.prompts)


def test_blind_mode_hides_names_and_interleaves(tmp_path):
    policies = {"remix": ConstantPolicy(FORWARD), "uniform": ConstantPolicy(BACK), "human": ConstantPolicy(FORWARD)}
    answers = answers_for(9, "f", goals=1)
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        outcome, operator = run(log, MockRobot(control_hz=50.0), policies, answers, tasks=("a",), trials=3, blind=True,
                                seed=3, rollout=RolloutSettings(time_limit_s=0.06))
        labels = outcome.session.blind_labels
        assert sorted(labels.values()) == [1, 2, 3]
        rows = log.trials()
    text = " ".join(operator.prompts + operator.messages)
    assert "remix" not in text and "uniform" not in text and "human" not in text
    assert all(f"policy #{k}" in text for k in (1, 2, 3))
    order = [r.policy for r in rows]
    for round_start in (0, 3, 6):  # every round runs each policy once
        assert sorted(order[round_start:round_start + 3]) == ["human", "remix", "uniform"]
    assert order[:3] != order[3:6] or order[3:6] != order[6:]  # ... in a shuffled order
    assert plan_trials(("a",), list(policies), 3, True, 3) == plan_trials(("a",), list(policies), 3, True, 3)


def test_robot_fault_is_retried_under_the_same_trial_index(tmp_path):
    robot = MockRobot(control_hz=50.0, faults={"reflex": [2]})  # the first trial faults at its 2nd command
    answers = GOAL + ["", "note: arm stopped"] + answers_for(2, "s")
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        run(log, robot, {"p": ConstantPolicy(FORWARD)}, answers, tasks=("a",), rollout=RolloutSettings(time_limit_s=0.1))
        rows = log.trials()
    assert [(r.trial_index, r.attempt, r.outcome, r.labelled_by) for r in rows] == [
        (0, 0, "robot_fault", "robot"), (0, 1, "success", "operator"), (1, 0, "success", "operator")]
    assert "reflex" in rows[0].notes and "arm stopped" in rows[0].notes


def test_repeated_faults_give_up_after_the_retry_budget(tmp_path):
    robot = MockRobot(control_hz=50.0, faults={"reflex": [1, 1]})  # trial 1 faults on both attempts
    answers = GOAL + ["", ""] * 2 + answers_for(1, "s")
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        outcome, _ = run(log, robot, {"p": ConstantPolicy(FORWARD)}, answers, tasks=("a",),
                         max_fault_retries=1, rollout=RolloutSettings(time_limit_s=0.1))
        assert [p.trial_index for p in outcome.unsettled] == [0]
        assert [r.outcome for r in log.trials()] == ["robot_fault", "robot_fault", "success"]


def test_interrupted_session_resumes_where_it_stopped(tmp_path):
    policies = {"fwd": ConstantPolicy(FORWARD), "back": ConstantPolicy(BACK)}
    path = tmp_path / "t.sqlite"
    with TrialLog.create(path) as log:  # the operator input "dies" after 3 trials (like Ctrl-C at a prompt)
        with pytest.raises(RemixError, match="no answer left"):
            run(log, MockRobot(control_hz=50.0), policies, answers_for(3, "s", goals=1) + [""])
        assert len(log.trials()) == 3
    with TrialLog.create(path) as log:
        resume_answers = answers_for(1, "f") + GOAL + answers_for(4, "f")  # a/back/2, then task b's goal, ...
        outcome, operator = run(log, MockRobot(control_hz=50.0), policies, resume_answers)
        assert outcome.resumed and outcome.trials_skipped == 3 and outcome.trials_run == 5
        rows = log.trials()
        assert len(rows) == 8 and len({(r.task, r.policy, r.trial_index) for r in rows}) == 8
        assert [r.outcome for r in rows[:3]] == ["success"] * 3 and {r.outcome for r in rows[3:]} == {"failure"}
        assert any("resuming" in m for m in operator.messages)
        # the goal of task a was kept from the first run: only task b's goal was asked for
        assert sum("arrange the goal scene" in p for p in operator.prompts) == 1
        with pytest.raises(RemixError, match="different settings"):
            run(log, MockRobot(control_hz=50.0), policies, [], tasks=("a",))


def test_sim_session_labels_itself_without_an_operator(tmp_path):
    from robots.sim import SimRobot

    robot = SimRobot(profile="franka", task="lift_red")  # rate mode, 10 Hz
    policies = {"expert": load_policy("scripted:expert", robot=robot), "idle": ConstantPolicy([0, 0, 0, 0, 0, 0, 1])}
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        outcome, operator = run(log, robot, policies, answers=[], tasks=("lift_red", "put_red_in_green"),
                                rollout=RolloutSettings(time_limit_s=8.0))
        rows = log.trials()
        assert outcome.trials_run == 8 and operator.prompts == []  # no one was asked anything
        assert {r.labelled_by for r in rows} == {"sim"}
        by_policy = {p: [r.outcome for r in rows if r.policy == p] for p in policies}
        assert by_policy == {"expert": ["success"] * 4, "idle": ["failure"] * 4}
        assert {r.end_reason for r in rows if r.policy == "expert"} == {"success_predicate"}
        idle = [r for r in rows if r.policy == "idle"]
        assert all(r.end_reason == "time_limit" and r.steps == 80 for r in idle)  # 8 s of sim time at 10 Hz
        assert all(r.duration_s < 8.0 for r in idle)  # ... without waiting for the wall clock
        assert log.resolve(rows[0].goal_image_path).exists()
        # every trial index its own scene, and every policy meets the same scenes (the paper's fixed placements)
        seeds = {p: [(r.task, r.trial_index, r.seed) for r in rows if r.policy == p] for p in policies}
        assert seeds["expert"] == seeds["idle"] and len({s for _, _, s in seeds["expert"]}) == 4


def test_each_sim_trial_gets_its_goal_from_its_own_scene(tmp_path):
    """The goal is the last frame of the expert's successful execution from the trial's scene (as a demo's last
    frame is in training), not one goal per session from another scene."""
    from robots.goals import read_image
    from robots.sim import SimRobot

    robot = SimRobot(profile="widowx", task="lift_red", cameras={"cam0": (32, 32)})
    policies = {"expert": load_policy("scripted:expert", robot=robot)}
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        run(log, robot, policies, answers=[], tasks=("lift_red",), trials=3, rollout=RolloutSettings(time_limit_s=8.0))
        rows = log.trials()
        goals = [read_image(log.resolve(r.goal_image_path)) for r in rows]
        assert len({r.goal_image_path for r in rows}) == 3
        with robot:
            for row, goal in zip(rows, goals):
                robot.set_task("lift_red")
                robot.reset(seed=row.seed)
                first = robot.get_observation().images["cam0"]
                while not robot.check_success():
                    robot.send_action(robot.expert_action())
                assert np.array_equal(robot.get_observation().images["cam0"], goal)  # that scene's success frame
                # the cube in the goal sits where it started in the trial's own scene: only the lift changes the view
                assert np.abs(first.astype(int) - goal.astype(int)).mean() < 12


def test_unknown_sim_task_is_rejected_before_anything_runs(tmp_path):
    from robots.sim import SimRobot

    with TrialLog.create(tmp_path / "t.sqlite") as log:
        with pytest.raises(RemixError, match="unknown sim task"):
            run(log, SimRobot(), {"p": ConstantPolicy(FORWARD)}, [], tasks=("fold_laundry",))
        assert log.session_names() == []  # nothing saved that could block the corrected rerun


def test_ctrl_c_mid_trial_keeps_finished_trials_and_drops_the_half_trial(tmp_path):
    class InterruptedOnSecondTrial(ConstantPolicy):
        def act(self, observation):
            if self.resets == 2 and self.calls > 12:
                raise KeyboardInterrupt
            return super().act(observation)

    robot = MockRobot(control_hz=50.0)
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        with pytest.raises(KeyboardInterrupt):
            run(log, robot, {"p": InterruptedOnSecondTrial(FORWARD)}, answers_for(1, "s", goals=1) + [""], tasks=("a",))
        assert robot.events.stops == 2  # once after trial 1, once at the interrupt (before the error went up)
        assert [(r.trial_index, r.outcome) for r in log.trials()] == [(0, "success")]
    videos = tmp_path / "t_media" / "s1" / "videos" / "a"
    assert sorted(p.name for p in videos.iterdir()) == ["p-trial01-a0.mp4"]  # no half-written second video


def test_a_fault_while_resetting_is_retried_and_is_not_a_trial(tmp_path):
    goal = write_png(tmp_path / "goal.png", (0, 0, 200))
    robot = MockRobot(control_hz=50.0)
    robot.inject("camera_timeout", at_step=0, times=3)  # more failed reads than the robot's own retries
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        _, operator = run(log, robot, {"p": ConstantPolicy(FORWARD)}, answers_for(1, "s"), tasks=("a",), trials=1,
                          goal_images={"a": str(goal)}, rollout=RolloutSettings(time_limit_s=0.06))
        assert [(r.attempt, r.outcome) for r in log.trials()] == [(0, "success")]
    assert any("robot fault while resetting" in m for m in operator.messages)


def test_rerunning_with_more_trials_adds_only_the_missing_ones(tmp_path):
    policies = {"p": ConstantPolicy(FORWARD)}
    fast = RolloutSettings(time_limit_s=0.06)
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        first_run = answers_for(1, "s", goals=1) * 2  # per task: goal capture, then its one trial
        run(log, MockRobot(control_hz=50.0), policies, first_run, trials=1, rollout=fast)
        outcome, _ = run(log, MockRobot(control_hz=50.0), policies, answers_for(4, "f"), trials=3, rollout=fast)
        assert (outcome.trials_skipped, outcome.trials_run, outcome.session.trials_per_cell) == (2, 4, 3)
        rows = log.trials()
        assert sorted((r.task, r.trial_index, r.outcome) for r in rows) == [
            ("a", 0, "success"), ("a", 1, "failure"), ("a", 2, "failure"),
            ("b", 0, "success"), ("b", 1, "failure"), ("b", 2, "failure")]


def test_each_trial_seeds_the_policy_with_its_logged_seed(tmp_path):
    class Seeded(ConstantPolicy):
        seed = 0

        def reset(self, goal):
            super().reset(goal)
            self.seen.append(self.seed)

    policy = Seeded(FORWARD)
    policy.seen = []
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        run(log, MockRobot(control_hz=50.0), {"p": policy}, answers_for(3, "s", goals=1), tasks=("a",), trials=3,
            rollout=RolloutSettings(time_limit_s=0.06))
        assert policy.seen == [r.seed for r in log.trials()] and len(set(policy.seen)) == 3


def test_real_robot_trials_start_from_the_goals_start_placements(tmp_path):
    """The paper's protocol: the operator photographs the start placements with the goal, and every trial asks
    for the scene to be reset to them."""
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        _, operator = run(log, MockRobot(control_hz=50.0), {"p": ConstantPolicy(FORWARD)},
                          answers_for(2, "s", goals=1), tasks=("a",))
        start = tmp_path / "t_media" / "s1" / "goals" / "a" / "start" / "cam0.png"
        assert start.exists() and (start.parent / "goal.json").exists()
        assert "start placements" in operator.prompts[0] and "goal scene" in operator.prompts[1]
        trial_prompts = [p for p in operator.prompts if "press Enter to start" in p]
        assert len(trial_prompts) == 2
        assert all(f"reset the scene to the goal's start placements (as in {start})" in p for p in trial_prompts)


def test_a_policy_that_raises_is_logged_as_a_failed_trial_and_ends_the_session(tmp_path):
    class BreaksOnSecondTrial(ConstantPolicy):
        def act(self, observation):
            if self.resets == 2:
                raise IndexError("list index out of range")
            return super().act(observation)

    robot = MockRobot(control_hz=50.0)
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        with pytest.raises(PolicyFailed, match=r"trial 2/3: policy act raised IndexError: list index out of range; "
                                               r"arm stopped, trial logged as a failure \(policy_error\)") as failed:
            run(log, robot, {"p": BreaksOnSecondTrial(FORWARD)}, answers_for(1, "s", goals=1) + [""], tasks=("a",),
                trials=3)
        assert failed.value.policy == "p" and not failed.value.stalled and robot.events.stops >= 2
        rows = log.trials()
        assert [(r.outcome, r.end_reason, r.labelled_by) for r in rows] == [
            ("success", "time_limit", "operator"), ("failure", "policy_error", "harness")]
        assert "IndexError" in rows[1].notes and log.resolve(rows[1].video_path).exists()


def test_a_session_that_failed_before_its_first_trial_is_started_afresh_with_new_settings(tmp_path):
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        with pytest.raises(RemixError, match="no answer left"):  # the operator walked away during the goal capture
            run(log, MockRobot(control_hz=50.0), {"p": ConstantPolicy(FORWARD)}, [], tasks=("typo",))
        outcome, operator = run(log, MockRobot(control_hz=50.0), {"p": ConstantPolicy(FORWARD)},
                                answers_for(1, "s", goals=1), tasks=("a",), trials=1)
        assert not outcome.resumed and outcome.trials_run == 1
        assert any("starting it afresh" in m for m in operator.messages)
        assert [(r.task, r.outcome) for r in log.trials()] == [("a", "success")]
