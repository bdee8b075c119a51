"""The trial log: one SQLite database (WAL) holding every evaluation session and trial.

Why SQLite: a finished trial must survive a crash, Ctrl-C or SIGKILL a millisecond later, and a
report must be able to read the log while a session is still running. Each trial (its row and its
per-step action log) is written in one transaction at the moment it ends, with `synchronous=FULL`,
so a trial is either fully in the log or not at all. Media paths are stored relative to the
database's folder, so the folder can be moved or copied as a whole.

Tables: `sessions`, `tasks`, `policies`, `session_tasks` (goal image per session and task),
`session_policies` (order and blind label), `trials`, `trial_steps` (per-step action log).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from remix.common.errors import RemixError

SCHEMA_VERSION = 1
OUTCOMES = ("success", "failure", "robot_fault")
SCORED_OUTCOMES = ("success", "failure")
REQUIRED_TABLES = ("meta", "sessions", "tasks", "policies", "session_tasks", "session_policies", "trials",
                   "trial_steps")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    robot TEXT NOT NULL,
    control_mode TEXT NOT NULL,
    control_hz REAL NOT NULL,
    operator TEXT NOT NULL,
    seed INTEGER NOT NULL,
    blind INTEGER NOT NULL,
    trials_per_cell INTEGER NOT NULL,
    time_limit_s REAL NOT NULL,
    config TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS policies (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, spec TEXT NOT NULL, UNIQUE (name, spec)
);
CREATE TABLE IF NOT EXISTS session_tasks (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    task_id INTEGER NOT NULL REFERENCES tasks(id),
    position INTEGER NOT NULL,
    goal_image_path TEXT,
    PRIMARY KEY (session_id, task_id)
);
CREATE TABLE IF NOT EXISTS session_policies (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    policy_id INTEGER NOT NULL REFERENCES policies(id),
    position INTEGER NOT NULL,
    blind_label INTEGER NOT NULL,
    PRIMARY KEY (session_id, policy_id)
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    task_id INTEGER NOT NULL REFERENCES tasks(id),
    policy_id INTEGER NOT NULL REFERENCES policies(id),
    trial_index INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL NOT NULL,
    duration_s REAL NOT NULL,
    steps INTEGER NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'robot_fault')),
    end_reason TEXT NOT NULL,
    labelled_by TEXT NOT NULL,
    operator TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '',
    goal_image_path TEXT,
    video_path TEXT,
    UNIQUE (session_id, task_id, policy_id, trial_index, attempt)
);
CREATE TABLE IF NOT EXISTS trial_steps (
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    step INTEGER NOT NULL,
    t REAL NOT NULL,
    action BLOB NOT NULL,
    applied BLOB NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (trial_id, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS trials_by_session ON trials (session_id, task_id, policy_id);
"""


@dataclass(frozen=True)
class SessionSpec:
    """What defines a session; rerunning with the same name must match (trials may grow)."""

    name: str
    robot: str
    control_mode: str
    control_hz: float
    tasks: tuple[str, ...]
    policies: Mapping[str, str]  # display name -> spec (checkpoint dir, replay:..., scripted:...)
    trials_per_cell: int
    time_limit_s: float
    seed: int = 0
    blind: bool = False
    operator: str = ""
    config: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    """A session row as stored, with its tasks and policies in run order."""

    id: int
    name: str
    robot: str
    control_mode: str
    control_hz: float
    tasks: tuple[str, ...]
    policies: tuple[tuple[str, str], ...]  # (name, spec) in run order
    blind_labels: Mapping[str, int]  # policy name -> k in "policy #k"
    trials_per_cell: int
    time_limit_s: float
    seed: int
    blind: bool
    operator: str
    created_at: float


@dataclass(frozen=True)
class StepRecord:
    """One control step: when (seconds since trial start), what the policy asked, what the robot did."""

    t: float
    action: np.ndarray
    applied: np.ndarray
    state: np.ndarray


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial, as written to the log."""

    session_id: int
    task: str
    policy: str
    trial_index: int
    attempt: int
    seed: int
    started_at: float
    ended_at: float
    steps: int
    outcome: str
    end_reason: str
    labelled_by: str
    operator: str
    notes: str = ""
    goal_image_path: str | None = None
    video_path: str | None = None

    @property
    def duration_s(self) -> float:
        return self.ended_at - self.started_at


@dataclass(frozen=True)
class TrialRow:
    """A trial as read back for reports, joined with its session, task and policy."""

    id: int
    session: str
    robot: str
    task: str
    policy: str
    policy_spec: str
    trial_index: int
    attempt: int
    seed: int
    started_at: float
    ended_at: float
    duration_s: float
    steps: int
    outcome: str
    end_reason: str
    labelled_by: str
    operator: str
    notes: str
    goal_image_path: str | None
    video_path: str | None
    task_position: int = 0  # the task's place in its session's configured order
    policy_position: int = 0  # the policy's place in its session's configured order


def _blob(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=np.float32).tobytes()


class TrialLog:
    """Read/write access to one trial database. Use `TrialLog.open(path)` or `TrialLog.create(path)`."""

    def __init__(self, path: Path, connection: sqlite3.Connection, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._db = connection

    # ----------------------------------------------------------------- opening
    @classmethod
    def create(cls, path: str | Path) -> TrialLog:
        """Open the database at `path` for writing, creating it (and its folder) if needed."""
        path = Path(path).expanduser()
        if path.is_dir():
            raise RemixError(f"trial database path {path} is a directory; pass a file such as {path / 'trials.sqlite'}")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as error:
            raise RemixError(f"{path} is not a usable trial database ({error}); pass another path") from None
        log = cls(path, db, readonly=False)
        log._validate()
        return log

    @classmethod
    def open(cls, path: str | Path) -> TrialLog:
        """Open an existing database read-only (reports); validates that it is a trial log."""
        path = Path(path).expanduser()
        if not path.exists():
            raise RemixError(f"trial database {path} does not exist; pass db=<path to the .sqlite written by remix-eval>")
        if path.is_dir():
            raise RemixError(f"trial database path {path} is a directory; pass the .sqlite file inside it")
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30.0)
        except sqlite3.DatabaseError as error:
            raise RemixError(f"cannot open trial database {path} ({error}); check the path and permissions") from None
        log = cls(path, db, readonly=True)
        log._validate()
        return log

    def _validate(self) -> None:
        try:
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            missing = [t for t in REQUIRED_TABLES if t not in tables]
            if missing:
                raise RemixError(
                    f"{self.path} is not a remix trial database (missing tables {', '.join(missing)}); "
                    "pass the .sqlite written by remix-eval"
                )
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None or row[0] != str(SCHEMA_VERSION):
                raise RemixError(
                    f"{self.path} has trial-log schema version {row[0] if row else 'none'}, this remix reads "
                    f"version {SCHEMA_VERSION}; use the remix version that wrote it"
                )
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise RemixError(f"{self.path} is corrupt ({check}); restore it from a backup copy")
        except sqlite3.DatabaseError as error:
            self._db.close()
            raise RemixError(f"{self.path} is not a readable SQLite trial database ({error}); pass another path") from None
        except RemixError:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> TrialLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> Path:
        """Folder that relative media paths are resolved against."""
        return self.path.parent

    def resolve(self, relative: str | None) -> Path | None:
        return None if relative is None else self.root / relative

    def relative(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path.resolve())

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise RemixError(f"{self.path} is open read-only")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ----------------------------------------------------------------- sessions
    def _id(self, db: sqlite3.Connection, table: str, **values: str) -> int:
        where = " AND ".join(f"{k}=?" for k in values)
        row = db.execute(f"SELECT id FROM {table} WHERE {where}", tuple(values.values())).fetchone()
        if row is not None:
            return int(row[0])
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        return int(db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(values.values())).lastrowid)

    def start_session(self, spec: SessionSpec, blind_labels: Mapping[str, int] | None = None) -> tuple[Session, bool]:
        """Create the session, or resume the one with this name; returns (session, resumed).

        Resuming requires the same robot, tasks, policies (name and spec), blind flag and seed, so the
        counts of a resumed session mean what they say; only the number of trials may change.
        """
        existing = self.session(spec.name)
        if existing is not None and not self._has_trials(existing) and self._differences(existing, spec):
            # a session that ended before its first trial (an unknown task, a policy that failed to load, an
            # interrupted goal capture) holds no result: it must not block the corrected rerun of the same command
            self._delete_session(existing)
            existing = None
        if existing is not None:
            self._check_resumable(existing, spec)
            if existing.trials_per_cell != spec.trials_per_cell:
                with self._transaction() as db:
                    db.execute("UPDATE sessions SET trials_per_cell=? WHERE id=?", (spec.trials_per_cell, existing.id))
                existing = self.session(spec.name)
                assert existing is not None
            return existing, True
        labels = dict(blind_labels) if blind_labels else {name: k + 1 for k, name in enumerate(spec.policies)}
        if sorted(labels) != sorted(spec.policies) or sorted(labels.values()) != list(range(1, len(labels) + 1)):
            raise ValueError(f"blind labels {labels} must number every policy 1..{len(spec.policies)}")
        with self._transaction() as db:
            session_id = int(db.execute(
                "INSERT INTO sessions (name, robot, control_mode, control_hz, operator, seed, blind, trials_per_cell,"
                " time_limit_s, config, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (spec.name, spec.robot, spec.control_mode, float(spec.control_hz), spec.operator, int(spec.seed),
                 int(spec.blind), int(spec.trials_per_cell), float(spec.time_limit_s),
                 json.dumps(dict(spec.config), default=str, sort_keys=True), time.time()),
            ).lastrowid)
            for position, task in enumerate(spec.tasks):
                task_id = self._id(db, "tasks", name=task)
                db.execute("INSERT INTO session_tasks (session_id, task_id, position) VALUES (?,?,?)",
                           (session_id, task_id, position))
            for position, (name, policy_spec) in enumerate(spec.policies.items()):
                policy_id = self._id(db, "policies", name=name, spec=policy_spec)
                db.execute("INSERT INTO session_policies (session_id, policy_id, position, blind_label) VALUES (?,?,?,?)",
                           (session_id, policy_id, position, labels[name]))
        session = self.session(spec.name)
        assert session is not None
        return session, False

    def _has_trials(self, session: Session) -> bool:
        return self._db.execute("SELECT 1 FROM trials WHERE session_id=? LIMIT 1", (session.id,)).fetchone() is not None

    def _delete_session(self, session: Session) -> None:
        """Remove a session that has no trial (its tasks and policies rows stay: other sessions may share them)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM trials WHERE session_id=? LIMIT 1", (session.id,)).fetchone() is not None:
                raise RemixError(f"session {session.name!r} gained trials meanwhile; pass a new session=<name>")
            db.execute("DELETE FROM session_tasks WHERE session_id=?", (session.id,))
            db.execute("DELETE FROM session_policies WHERE session_id=?", (session.id,))
            db.execute("DELETE FROM sessions WHERE id=?", (session.id,))

    @classmethod
    def _check_resumable(cls, existing: Session, spec: SessionSpec) -> None:
        differences = cls._differences(existing, spec)
        if differences:
            raise RemixError(
                f"session {spec.name!r} already exists with different settings ({'; '.join(differences)}); "
                "rerun with the original settings to resume it, or pass a new session=<name>"
            )

    @staticmethod
    def _differences(existing: Session, spec: SessionSpec) -> list[str]:
        """What differs between a stored session and a rerun's settings (empty: the rerun resumes it)."""
        differences = []
        if existing.robot != spec.robot:
            differences.append(f"robot {existing.robot!r} vs {spec.robot!r}")
        if existing.tasks != tuple(spec.tasks):
            differences.append(f"tasks {list(existing.tasks)} vs {list(spec.tasks)}")
        if dict(existing.policies) != dict(spec.policies):
            differences.append(f"policies {dict(existing.policies)} vs {dict(spec.policies)}")
        if existing.blind != spec.blind:
            differences.append(f"blind {existing.blind} vs {spec.blind}")
        if existing.seed != spec.seed:
            differences.append(f"seed {existing.seed} vs {spec.seed}")
        if not math.isclose(existing.time_limit_s, spec.time_limit_s):
            differences.append(f"time_limit_s {existing.time_limit_s} vs {spec.time_limit_s}")
        return differences

    def session(self, name: str) -> Session | None:
        row = self._db.execute(
            "SELECT id, name, robot, control_mode, control_hz, trials_per_cell, time_limit_s, seed, blind, operator,"
            " created_at FROM sessions WHERE name=?", (name,)
        ).fetchone()
        if row is None:
            return None
        session_id = row[0]
        tasks = tuple(r[0] for r in self._db.execute(
            "SELECT t.name FROM session_tasks st JOIN tasks t ON t.id=st.task_id WHERE st.session_id=? ORDER BY st.position",
            (session_id,)))
        policy_rows = self._db.execute(
            "SELECT p.name, p.spec, sp.blind_label FROM session_policies sp JOIN policies p ON p.id=sp.policy_id"
            " WHERE sp.session_id=? ORDER BY sp.position", (session_id,)).fetchall()
        return Session(
            id=session_id, name=row[1], robot=row[2], control_mode=row[3], control_hz=row[4],
            tasks=tasks, policies=tuple((r[0], r[1]) for r in policy_rows),
            blind_labels={r[0]: int(r[2]) for r in policy_rows}, trials_per_cell=row[5], time_limit_s=row[6],
            seed=row[7], blind=bool(row[8]), operator=row[9], created_at=row[10],
        )

    def session_names(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM sessions ORDER BY created_at")]

    def set_goal_image(self, session: Session, task: str, path: Path) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE session_tasks SET goal_image_path=? WHERE session_id=? AND task_id=(SELECT id FROM tasks WHERE name=?)",
                (self.relative(path), session.id, task))

    def goal_image(self, session: Session, task: str) -> Path | None:
        row = self._db.execute(
            "SELECT st.goal_image_path FROM session_tasks st JOIN tasks t ON t.id=st.task_id"
            " WHERE st.session_id=? AND t.name=?", (session.id, task)).fetchone()
        return self.resolve(row[0]) if row and row[0] else None

    # ----------------------------------------------------------------- trials
    def cell_counts(self, session: Session) -> dict[tuple[str, str], dict[str, int]]:
        """{(task, policy): {outcome: count}} for one session, every cell present (zeros included)."""
        counts = {(t, p): dict.fromkeys(OUTCOMES, 0) for t in session.tasks for p, _ in session.policies}
        for task, policy, outcome, n in self._db.execute(
            "SELECT t.name, p.name, tr.outcome, COUNT(*) FROM trials tr JOIN tasks t ON t.id=tr.task_id"
            " JOIN policies p ON p.id=tr.policy_id WHERE tr.session_id=? GROUP BY t.name, p.name, tr.outcome",
            (session.id,)):
            counts.setdefault((task, policy), dict.fromkeys(OUTCOMES, 0))[outcome] = int(n)
        return counts

    def trial_attempts(self, session: Session) -> dict[tuple[str, str, int], list[str]]:
        """{(task, policy, trial_index): outcomes of its attempts in order}: what resuming must skip."""
        attempts: dict[tuple[str, str, int], list[str]] = {}
        for task, policy, index, outcome in self._db.execute(
            "SELECT t.name, p.name, tr.trial_index, tr.outcome FROM trials tr JOIN tasks t ON t.id=tr.task_id"
            " JOIN policies p ON p.id=tr.policy_id WHERE tr.session_id=? ORDER BY tr.trial_index, tr.attempt",
            (session.id,)):
            attempts.setdefault((task, policy, int(index)), []).append(outcome)
        return attempts

    def record_trial(self, record: TrialRecord, steps: Sequence[StepRecord]) -> int:
        """Write a finished trial and its step log in one durable transaction; returns the trial id."""
        if record.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {record.outcome!r}")
        with self._transaction() as db:
            task_row = db.execute(
                "SELECT t.id FROM session_tasks st JOIN tasks t ON t.id=st.task_id WHERE st.session_id=? AND t.name=?",
                (record.session_id, record.task)).fetchone()
            if task_row is None:
                raise ValueError(f"task {record.task!r} is not part of session {record.session_id}")
            task_id = task_row[0]
            policy_row = db.execute(
                "SELECT p.id FROM session_policies sp JOIN policies p ON p.id=sp.policy_id"
                " WHERE sp.session_id=? AND p.name=?", (record.session_id, record.policy)).fetchone()
            if policy_row is None:
                raise ValueError(f"policy {record.policy!r} is not part of session {record.session_id}")
            trial_id = int(db.execute(
                "INSERT INTO trials (session_id, task_id, policy_id, trial_index, attempt, seed, started_at, ended_at,"
                " duration_s, steps, outcome, end_reason, labelled_by, operator, notes, goal_image_path, video_path)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (record.session_id, task_id, policy_row[0], record.trial_index, record.attempt, record.seed,
                 record.started_at, record.ended_at, record.duration_s, record.steps, record.outcome,
                 record.end_reason, record.labelled_by, record.operator, record.notes, record.goal_image_path,
                 record.video_path),
            ).lastrowid)
            db.executemany(
                "INSERT INTO trial_steps (trial_id, step, t, action, applied, state) VALUES (?,?,?,?,?,?)",
                [(trial_id, i, float(s.t), _blob(s.action), _blob(s.applied), _blob(s.state))
                 for i, s in enumerate(steps)],
            )
        return trial_id

    def trials(
        self,
        sessions: Sequence[str] = (),
        robots: Sequence[str] = (),
        since: float | None = None,
        until: float | None = None,
    ) -> list[TrialRow]:
        """Trials matching every given filter (empty = no filter); `since`/`until` bound the start time."""
        clauses, params = [], []
        if sessions:
            clauses.append(f"s.name IN ({','.join('?' for _ in sessions)})")
            params += list(sessions)
        if robots:
            clauses.append(f"s.robot IN ({','.join('?' for _ in robots)})")
            params += list(robots)
        if since is not None:
            clauses.append("tr.started_at >= ?")
            params.append(since)
        if until is not None:
            clauses.append("tr.started_at < ?")
            params.append(until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            "SELECT tr.id, s.name, s.robot, t.name, p.name, p.spec, tr.trial_index, tr.attempt, tr.seed, tr.started_at,"
            " tr.ended_at, tr.duration_s, tr.steps, tr.outcome, tr.end_reason, tr.labelled_by, tr.operator, tr.notes,"
            " tr.goal_image_path, tr.video_path, st.position, sp.position FROM trials tr JOIN sessions s ON s.id=tr.session_id"
            " JOIN tasks t ON t.id=tr.task_id JOIN policies p ON p.id=tr.policy_id"
            " JOIN session_tasks st ON st.session_id=tr.session_id AND st.task_id=tr.task_id"
            " JOIN session_policies sp ON sp.session_id=tr.session_id AND sp.policy_id=tr.policy_id"
            f" {where} ORDER BY tr.started_at, tr.id", params).fetchall()
        return [TrialRow(*row) for row in rows]

    def step_log(self, trial_id: int) -> dict[str, np.ndarray]:
        """The per-step log of one trial: t (T,), action/applied/state (T, D) float32."""
        rows = self._db.execute(
            "SELECT t, action, applied, state FROM trial_steps WHERE trial_id=? ORDER BY step", (trial_id,)).fetchall()

        def stack(index: int) -> np.ndarray:
            if not rows:
                return np.zeros((0, 0), np.float32)
            return np.stack([np.frombuffer(r[index], dtype=np.float32) for r in rows])

        return {"t": np.array([r[0] for r in rows], dtype=np.float64), "action": stack(1), "applied": stack(2),
                "state": stack(3)}
