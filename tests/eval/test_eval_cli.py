"""remix-eval / remix-report as users run them: SIGKILL mid-session and resume, operator and sim sessions,
blind output, a diffusion checkpoint, clear errors.

Most runs call the console-script entry points in this process (same code path as the installed
script, without paying interpreter and torch start-up per run on a 2-core CI box); the SIGKILL run and
one --help are real subprocesses.
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from eval.trial_log import TrialLog
from remix.data.synthetic import SyntheticDomain, make_synthetic_store

BIN = Path(sys.executable).parent


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `remix-eval` / `remix-report` in-process; returns a CompletedProcess-like result."""
    from eval.cli import eval_main, report_main

    mains = {"remix-eval": eval_main, "remix-report": report_main}

    def run(name, *args, cwd):
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", [name, *args])
        capsys.readouterr()
        code = 0
        try:
            mains[name]()
        except SystemExit as exit_:
            code = exit_.code or 0
        captured = capsys.readouterr()
        return subprocess.CompletedProcess([name, *args], code, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "demo.zarr"
    make_synthetic_store(path, SyntheticDomain("d", num_episodes=1, episode_length=12))
    return path


def sim_args(db, store, trials=3):
    return [f"out={db}", "robot=sim", "session=nightly", "tasks=[lift_red,put_red_in_green]",
            f"policies={{expert:'scripted:expert',replay:'replay:{store}#0'}}", f"trials={trials}",
            "time_limit_s=5", "operator=scripted", "progress=false"]  # pick-and-place takes up to 18 steps (3.6 s)


def test_sigkill_mid_session_then_resume_gives_exact_counts(tmp_path, demo_store, cli):
    db = tmp_path / "evals" / "trials.sqlite"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([str(BIN / "remix-eval"), *sim_args(db, demo_store)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        count = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=5) as conn:
                        count = conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
                except sqlite3.OperationalError:
                    count = 0  # schema not written yet
            if count >= 4:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with TrialLog.open(db) as log:
        before = [(r.id, r.task, r.policy, r.trial_index, r.outcome, r.video_path) for r in log.trials()]
    assert 4 <= len(before) < 12
    done = cli("remix-eval", *sim_args(db, demo_store), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} already done" in done.stderr
    with TrialLog.open(db) as log:
        rows = log.trials()
        assert [(r.id, r.task, r.policy, r.trial_index, r.outcome, r.video_path) for r in rows[:len(before)]] == before
        assert len(rows) == 12
        assert sorted((r.task, r.policy, r.trial_index) for r in rows) == sorted(
            (t, p, i) for t in ("lift_red", "put_red_in_green") for p in ("expert", "replay") for i in range(3))
        assert {r.outcome for r in rows if r.policy == "expert"} == {"success"}
        for row in rows:
            assert log.resolve(row.video_path).exists()
    assert not list((db.parent / "trials_media").rglob("*.partial.mp4"))  # the killed trial's video was dropped
    assert "| lift_red | 3/3 (100%, 44%–100%) |" in done.stdout

    again = cli("remix-eval", *sim_args(db, demo_store), cwd=tmp_path)  # a finished session runs nothing
    assert again.returncode == 0 and "0 trial(s) run, 12 already done" in again.stderr

    report = cli("remix-report", str(db), "compare=[expert,replay]", "robots=[sim-widowx]", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "6/6 vs 0/6, difference +100.0 pts" in report.stdout
    out = db.parent / "report"
    assert {p.name for p in out.iterdir()} == {"report.md", "cells.csv", "summary.csv", "report.tex",
                                               "success_summary.png", "success_per_task.png"}


def test_operator_session_through_the_cli(tmp_path, demo_store, cli):
    # start placements, goal capture (arrange, keep), then per trial: reset to the start placements, label, note
    answers = '["","",y,"",s,"looks good","",f,""]'
    result = cli("remix-eval", f"out={tmp_path / 't.sqlite'}", "robot=mock", "tasks=[stack]", "trials=2",
                 f"policies={{demo:'replay:{demo_store}#0'}}", "time_limit_s=0.3", "operator=scripted",
                 f"operator.answers={answers}", "operator.name=ann", "session=lab", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| stack | 1/2 (50%, 9%–91%) |" in result.stdout
    with TrialLog.open(tmp_path / "t.sqlite") as log:
        rows = log.trials()
        assert [(r.outcome, r.notes, r.operator, r.end_reason) for r in rows] == [
            ("success", "looks good", "ann", "time_limit"), ("failure", "", "ann", "time_limit")]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["robot=mock", "tasks=[a]"], "no policies given"),
     (["robot=mock", "tasks=[a]", "policies={p:'/no/such/ckpt'}"], "cannot load policy"),
     (["robot=mock", "tasks=[a]", "policies={p:'scripted:expert'}"], "needs a simulated robot"),
     (["robot=mock", "tasks=[a]", "policies={p:'scripted:expert'}", "goal_images={a:/no/goal.png}"], "goal image"),
     (["robot=mock", "tasks=[a]", "policies={p:'scripted:expert'}", "time_limit_s=-1"], "time_limit_s"),
     (["robot=mock", "tasks=['a b']", "policies={p:'scripted:expert'}"], "task name"),
     (["robot=sim", "tasks=[fold]", "policies={p:'scripted:expert'}"], "unknown sim task")],
)
def test_eval_errors_are_one_line(tmp_path, cli, args, message):
    result = cli("remix-eval", f"out={tmp_path / 't.sqlite'}", "operator=scripted", *args, cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], result.stderr


def test_report_errors_are_one_line(tmp_path, cli):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"garbage" * 1000)
    empty = tmp_path / "empty.sqlite"
    TrialLog.create(empty).close()
    cases = [([str(tmp_path / "missing.sqlite")], "does not exist"), ([str(junk)], "not a"),
             ([], "no trial database given"), ([str(empty)], "no trials"),
             ([str(empty), "sessions=[nope]"], "not in"), ([str(empty), "compare=[a]"], "exactly two"),
             ([str(empty), "since=last-week"], "cannot read date")]
    for args, message in cases:
        result = cli("remix-report", *args, cwd=tmp_path)
        err = result.stderr
        assert result.returncode == 1, (args, err)
        assert err.strip().startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, (args, err)
    unknown = cli("remix-report", str(empty), "colour=blue", cwd=tmp_path)  # rejected by hydra itself
    assert unknown.returncode != 0 and "colour" in unknown.stderr


def test_help_lists_the_settings(tmp_path, cli):
    installed = subprocess.run([str(BIN / "remix-report"), "--help"], capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0 and "compare" in installed.stdout  # the console script is installed
    result = cli("remix-eval", "--help", cwd=tmp_path)
    assert result.returncode == 0 and "time_limit_s" in result.stdout


def test_blind_session_prints_labels_not_names(tmp_path, demo_store, cli):
    result = cli("remix-eval", f"out={tmp_path / 't.sqlite'}", "robot=sim", "tasks=[lift_red]", "trials=1", "blind=true",
                 f"policies={{expert:'scripted:expert',replay:'replay:{demo_store}#0'}}", "time_limit_s=6",
                 "operator=scripted", "progress=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "policy #1" in result.stdout and "policy #2" in result.stdout
    assert "expert" not in result.stdout and "replay" not in result.stdout
    named = cli("remix-report", str(tmp_path / "t.sqlite"), "formats=[md]", "plot=false", cwd=tmp_path)
    assert "| lift_red | 1/1" in named.stdout and "expert" in named.stdout


def write_untrained_checkpoint(directory: Path) -> Path:
    """A tiny untrained diffusion policy checkpoint, written through the policy package's own API."""
    import numpy as np
    import torch

    from remix.policy.checkpoint import save_checkpoint
    from remix.policy.config import ModelConfig
    from remix.policy.model import DiffusionPolicyNet
    from remix.policy.normalization import Normalization

    torch.manual_seed(0)
    config = ModelConfig(encoder="tiny", image_size=(16, 16), horizon=4, embed_dim=32, hidden_dim=64, num_blocks=1,
                         num_train_timesteps=20)
    rng = np.random.default_rng(0)
    actions = np.concatenate([rng.normal(0.0, 0.02, (200, 6)), rng.integers(0, 2, (200, 1))], axis=1)
    normalization = Normalization.fit({"sim": actions}, {"sim": rng.normal(size=(200, 7))}, (6,), 5.0, "sim")
    return save_checkpoint(directory, DiffusionPolicyNet(config).state_dict(), config, normalization, {"step": 0})


def test_a_diffusion_checkpoint_runs_through_the_harness(tmp_path, cli):
    checkpoint = write_untrained_checkpoint(tmp_path / "ckpt")
    result = cli("remix-eval", f"out={tmp_path / 't.sqlite'}", "robot=sim", "robot.cameras.cam0=[16,16]", "tasks=[lift_red]",
                 "trials=2", f"policies={{untrained:'{checkpoint}'}}", "time_limit_s=2", "operator=scripted", "progress=false",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with TrialLog.open(tmp_path / "t.sqlite") as log:
        rows = log.trials()
        assert [(r.outcome, r.labelled_by, r.end_reason, r.steps) for r in rows] == [
            ("failure", "sim", "time_limit", 10)] * 2  # 2 s of sim time at the WidowX profile's 5 Hz
        actions = log.step_log(rows[0].id)["action"]
        assert actions.shape == (10, 7) and np.all(np.isfinite(actions))
        assert not np.allclose(actions, log.step_log(rows[1].id)["action"])  # each trial: its own scene and sampling seed


def test_a_failed_run_does_not_block_the_corrected_rerun_under_the_default_session_name(tmp_path, demo_store, cli):
    args = [f"out={tmp_path / 't.sqlite'}", "robot=sim", "trials=1", "policies={expert:'scripted:expert'}",
            "time_limit_s=6", "operator=scripted", "progress=false", "video=false"]
    typo = cli("remix-eval", *args, "tasks=[lift_redd]", cwd=tmp_path)
    assert typo.returncode == 1 and "unknown sim task" in typo.stderr
    fixed = cli("remix-eval", *args, "tasks=[lift_red]", cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert "| lift_red | 1/1" in fixed.stdout


def test_goal_images_accepts_the_folder_remix_goal_wrote(tmp_path, demo_store, cli):
    from robots.goals import save_goal
    from robots.robot import Observation

    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = (200, 30, 30)
    save_goal(tmp_path / "goals", "stack", Observation({"cam0": image}, np.zeros(7, np.float32), {"cam0": 0.0}),
              "mock", source="test")
    for i, given in enumerate(("goals/stack", "goals", str(tmp_path / "goals" / "stack" / "cam0.png"))):
        result = cli("remix-eval", f"out={tmp_path / 't.sqlite'}", "robot=mock", "tasks=[stack]", "trials=1",
                     f"session=s{i}", f"policies={{demo:'replay:{demo_store}#0'}}", f"goal_images={{stack:{given}}}",
                     "time_limit_s=0.2", "operator=scripted", 'operator.answers=["",s,""]', "video=false", cwd=tmp_path)
        assert result.returncode == 0, (given, result.stderr)
        with TrialLog.open(tmp_path / "t.sqlite") as log:
            stored = log.goal_image(log.session(f"s{i}"), "stack")
        assert np.array_equal(cv2.cvtColor(cv2.imread(str(stored)), cv2.COLOR_BGR2RGB), image)
    (tmp_path / "empty").mkdir()
    wrong = cli("remix-eval", f"out={tmp_path / 't.sqlite'}", "robot=mock", "tasks=[stack]", "session=x",
                f"policies={{demo:'replay:{demo_store}#0'}}", "goal_images={stack:empty}", "operator=scripted", cwd=tmp_path)
    assert wrong.returncode == 1 and "holds no goal.json" in wrong.stderr.strip().splitlines()[-1]


def test_robot_faults_as_documented_reach_the_mock_robot(tmp_path, demo_store, cli):
    # docs/robots.md: faults {reflex: [5], ...}; on the command line robot.faults={...} (no '+' needed)
    goal = write_goal_png(tmp_path / "goal.png")
    result = cli("remix-eval", f"out={tmp_path / 't.sqlite'}", "robot=mock", "robot.faults={reflex:[2]}", "tasks=[stack]",
                 "trials=1", f"policies={{demo:'replay:{demo_store}#0'}}", f"goal_images={{stack:{goal}}}",
                 "time_limit_s=0.3", "operator=scripted", 'operator.answers=["","",s]', "ask_notes=false",
                 "video=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with TrialLog.open(tmp_path / "t.sqlite") as log:
        assert [(r.attempt, r.outcome) for r in log.trials()] == [(0, "robot_fault"), (1, "success")]


def write_goal_png(path: Path) -> Path:
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :32] = 200
    cv2.imwrite(str(path), image)
    return path


@pytest.mark.parametrize(("behaviour", "end_reason", "message"), [
    ("hang", "policy_timeout", "policy act stalled: no answer within policy_timeout_s=0.5 s"),
    ("raise", "policy_error", "policy act raised ZeroDivisionError: division by zero")])
def test_a_hung_or_raising_policy_gives_one_line_and_a_logged_failed_trial(tmp_path, cli, monkeypatch, behaviour,
                                                                          end_reason, message):
    import threading

    from eval_helpers import ConstantPolicy

    import remix.policy

    release = threading.Event()
    closed = []

    class Faulty(ConstantPolicy):
        def act(self, observation):
            if self.calls == 2:
                if behaviour == "hang":
                    release.wait(30)
                else:
                    return 1 / 0
            return super().act(observation)

        def close(self):
            closed.append(True)

    monkeypatch.setattr(remix.policy, "load_policy", lambda spec, **_: Faulty([0.01, 0, 0, 0, 0, 0, 1]))
    goal = write_goal_png(tmp_path / "goal.png")
    try:
        result = cli("remix-eval", f"out={tmp_path / 't.sqlite'}", "robot=mock", "tasks=[stack]", "trials=2",
                     "policies={p:my_policy}", f"goal_images={{stack:{goal}}}", "policy_timeout_s=0.5",
                     "time_limit_s=20", "operator=scripted", 'operator.answers=[""]', "video=false", cwd=tmp_path)
    finally:
        release.set()
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert lines[-1].startswith("error: [1/2] stack / p / trial 1/2: " + message), result.stderr
    assert closed == ([] if behaviour == "hang" else [True])  # a stalled policy is not closed (that could hang too)
    with TrialLog.open(tmp_path / "t.sqlite") as log:
        assert [(r.outcome, r.end_reason, r.steps) for r in log.trials()] == [("failure", end_reason, 2)]


def test_unicode_paths_are_accepted_or_get_a_one_line_quoting_hint(tmp_path, cli):
    folder = tmp_path / "données été"
    TrialLog.create(folder / "essai.sqlite").close()
    for args in ([str(folder / "essai.sqlite")], [f"db={folder / 'essai.sqlite'}", f"out={folder / 'rapport'}"]):
        result = cli("remix-report", *args, cwd=tmp_path)  # positional and key=value: both reach the command
        assert result.returncode == 1 and result.stderr.startswith("error: no trials in "), (args, result.stderr)
    in_a_list = cli("remix-report", str(folder / "essai.sqlite"), "sessions=[réunion]", cwd=tmp_path)
    lines = in_a_list.stderr.strip().splitlines()
    assert in_a_list.returncode == 2 and len(lines) == 1 and "must be quoted" in lines[0], in_a_list.stderr
    quoted = cli("remix-report", str(folder / "essai.sqlite"), "sessions=['réunion']", cwd=tmp_path)
    assert quoted.returncode == 1 and "not in" in quoted.stderr
