"""The SQLite trial log: durability settings, sessions and resume rules, step logs, bad databases."""

import sqlite3

import numpy as np
import pytest
from eval_helpers import add_session, outcomes

from eval.trial_log import SessionSpec, StepRecord, TrialLog, TrialRecord
from remix.common.errors import RemixError


def spec(**changes) -> SessionSpec:
    values = dict(name="s1", robot="mock", control_mode="rate", control_hz=10.0, tasks=("a", "b"),
                  policies={"p": "ckpt/p", "q": "ckpt/q"}, trials_per_cell=3, time_limit_s=100.0, seed=7)
    values.update(changes)
    return SessionSpec(**values)


def test_database_uses_wal_and_full_sync(tmp_path):
    with TrialLog.create(tmp_path / "sub" / "t.sqlite") as log:
        assert log._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_session_roundtrip_and_resume_rules(tmp_path):
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        session, resumed = log.start_session(spec(), blind_labels={"p": 2, "q": 1})
        assert not resumed
        assert session.tasks == ("a", "b") and session.policies == (("p", "ckpt/p"), ("q", "ckpt/q"))
        assert session.blind_labels == {"p": 2, "q": 1}
        again, resumed = log.start_session(spec(trials_per_cell=5))  # more trials: allowed
        assert resumed and again.id == session.id and again.trials_per_cell == 5
        assert again.blind_labels == {"p": 2, "q": 1}  # labels survive a resume
        log.record_trial(TrialRecord(session.id, "a", "p", 0, 0, 1, 10.0, 20.0, 0, "success", "operator", "operator",
                                     "tester"), [])
        for change in (dict(robot="widowx"), dict(tasks=("a",)), dict(policies={"p": "ckpt/other", "q": "ckpt/q"}),
                       dict(seed=8), dict(blind=True), dict(time_limit_s=50.0)):
            with pytest.raises(RemixError, match="already exists with different settings"):
                log.start_session(spec(**change))


def test_a_session_without_trials_gives_way_to_a_rerun_with_other_settings(tmp_path):
    # remix-eval with a typo (unknown task, bad policy) saved its session before failing; the corrected rerun under
    # the default session name must not be refused for "different settings" when the old session holds no trial
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        failed, _ = log.start_session(spec(tasks=("typo",)))
        session, resumed = log.start_session(spec())
        assert not resumed and session.tasks == ("a", "b") and log.session_names() == ["s1"]
        assert log.session("s1").tasks == ("a", "b") and failed.tasks == ("typo",)
        log.record_trial(TrialRecord(session.id, "a", "p", 0, 0, 1, 10.0, 20.0, 0, "failure", "operator", "operator",
                                     "tester"), [])
        with pytest.raises(RemixError, match="already exists with different settings"):  # results are never dropped
            log.start_session(spec(tasks=("a",)))
        assert log.start_session(spec())[1]  # the same settings still resume


def test_trial_and_step_log_roundtrip(tmp_path):
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        session, _ = log.start_session(spec())
        steps = [StepRecord(0.1 * i, np.full(7, i, np.float32), np.full(7, -i, np.float32), np.arange(7, dtype=np.float32))
                 for i in range(4)]
        video = tmp_path / "t_media" / "v.mp4"
        trial_id = log.record_trial(TrialRecord(session.id, "a", "p", 0, 0, 123, 1000.0, 1012.5, 4, "success",
                                                "operator", "operator", "ann", "clean grasp",
                                                "t_media/goal.png", log.relative(video)), steps)
        row = log.trials()[0]
        assert (row.task, row.policy, row.outcome, row.steps, row.seed, row.operator, row.notes) == (
            "a", "p", "success", 4, 123, "ann", "clean grasp")
        assert row.duration_s == pytest.approx(12.5)
        assert row.video_path == "t_media/v.mp4" and log.resolve(row.video_path) == tmp_path / "t_media" / "v.mp4"
        stored = log.step_log(trial_id)
        np.testing.assert_allclose(stored["t"], [0.0, 0.1, 0.2, 0.3])
        np.testing.assert_array_equal(stored["action"][:, 0], [0, 1, 2, 3])
        np.testing.assert_array_equal(stored["applied"][3], np.full(7, -3))
        counts = log.cell_counts(session)
        assert counts[("a", "p")]["success"] == 1 and counts[("b", "q")] == {"success": 0, "failure": 0, "robot_fault": 0}
        with pytest.raises(sqlite3.IntegrityError):  # the same attempt cannot be logged twice
            log.record_trial(TrialRecord(session.id, "a", "p", 0, 0, 1, 0.0, 1.0, 0, "failure", "x", "x", ""), [])
        assert len(log.trials()) == 1 and len(log.step_log(trial_id)["t"]) == 4  # the failed insert left nothing


def test_trial_attempts_lists_retries(tmp_path):
    with TrialLog.create(tmp_path / "t.sqlite") as log:
        session, _ = log.start_session(spec())
        for attempt, outcome in enumerate(["robot_fault", "success"]):
            log.record_trial(TrialRecord(session.id, "a", "q", 2, attempt, 0, 0.0, 1.0, 0, outcome, "x", "x", ""), [])
        assert log.trial_attempts(session) == {("a", "q", 2): ["robot_fault", "success"]}
        with pytest.raises(ValueError, match="not part of session"):  # would be invisible to reports
            log.record_trial(TrialRecord(session.id, "zzz", "q", 0, 0, 0, 0.0, 1.0, 0, "success", "x", "x", ""), [])
        with pytest.raises(ValueError, match="outcome"):
            log.record_trial(TrialRecord(session.id, "a", "q", 3, 0, 0, 0.0, 1.0, 0, "maybe", "x", "x", ""), [])


def test_a_reader_sees_trials_while_a_writer_holds_the_log(tmp_path):
    path = tmp_path / "t.sqlite"
    with TrialLog.create(path) as writer:
        add_session(writer, "s", "mock", {("a", "remix"): outcomes(2, 1)}, day="2026-11-01", policies=("remix",))
        with TrialLog.open(path) as reader:
            assert len(reader.trials()) == 3
            with pytest.raises(RemixError, match="read-only"):
                reader.set_goal_image(reader.session("s"), "a", tmp_path / "g.png")


def test_missing_or_malformed_databases_give_one_line_errors(tmp_path):
    with pytest.raises(RemixError, match="does not exist"):
        TrialLog.open(tmp_path / "nope.sqlite")
    with pytest.raises(RemixError, match="is a directory"):
        TrialLog.open(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    for opener in (TrialLog.open, TrialLog.create):
        with pytest.raises(RemixError, match="not a") as error:
            opener(junk)
        assert "\n" not in str(error.value)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE trials (x)")
    with pytest.raises(RemixError, match="not a remix trial database"):
        TrialLog.open(other)
    newer = tmp_path / "newer.sqlite"
    TrialLog.create(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(RemixError, match="schema version 99"):
        TrialLog.open(newer)


def test_truncated_database_is_reported_not_crashed(tmp_path):
    path = tmp_path / "t.sqlite"
    with TrialLog.create(path) as log:
        add_session(log, "s", "mock", {("a", "remix"): outcomes(20, 20)}, day="2026-11-01", policies=("remix",))
        log._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RemixError) as error:
        with TrialLog.open(path) as log:
            log.trials()
    assert "\n" not in str(error.value)
