"""The safety layer every backend shares: limits, action sanitising, rate-mode watchdog, stop key.

Why one layer: a policy bug must never reach an arm as a NaN, a 30 cm jump or a pose outside the table,
whatever backend runs. `Robot.send_action` runs every action through `sanitize_action` and
`step_target`; rate-mode robots run a `Watchdog`; loops run a `StopKeyMonitor` so the operator's key
halts motion at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from remix.common.errors import ConfigError
from remix.common.operator_input import OperatorInput
from robots.geometry import compose_rotation

log = logging.getLogger("robots.safety")


@dataclass(frozen=True)
class Pose:
    """An end-effector target or measurement: position (m), extrinsic xyz euler (rad), gripper (1 = open)."""

    position: tuple[float, float, float]
    euler: tuple[float, float, float]
    gripper: float

    @staticmethod
    def from_arrays(position: Sequence[float], euler: Sequence[float], gripper: float) -> Pose:
        return Pose(
            tuple(float(v) for v in position), tuple(float(v) for v in euler), float(gripper)  # type: ignore[arg-type]
        )

    @staticmethod
    def from_state(state: Sequence[float]) -> Pose:
        return Pose.from_arrays(state[:3], state[3:6], state[6])

    def as_state(self) -> np.ndarray:
        """The (7,) float32 proprio vector of the contract: x, y, z, roll, pitch, yaw, gripper."""
        return np.array([*self.position, *self.euler, self.gripper], dtype=np.float32)

    def replace(self, position: Sequence[float] | None = None, euler: Sequence[float] | None = None,
                gripper: float | None = None) -> Pose:
        return Pose.from_arrays(
            self.position if position is None else position,
            self.euler if euler is None else euler,
            self.gripper if gripper is None else gripper,
        )


@dataclass(frozen=True)
class SafetyLimits:
    """Workspace box (m, base frame), per-step delta limits and watchdog/reset settings."""

    workspace_low: tuple[float, float, float]
    workspace_high: tuple[float, float, float]
    max_translation: float = 0.05
    max_rotation: float = 0.25
    watchdog_periods: float = 2.0
    safe_height: float | None = None
    max_speed: float | None = None  # m/s of the target; None = max_translation per control period (+25 % for jitter)

    def __post_init__(self) -> None:
        low, high = np.asarray(self.workspace_low, float), np.asarray(self.workspace_high, float)
        if low.shape != (3,) or high.shape != (3,) or not np.all(np.isfinite(low)) or not np.all(np.isfinite(high)):
            raise ConfigError("robot workspace_low/workspace_high must be 3 finite numbers each (x, y, z in m)")
        if np.any(low >= high):
            raise ConfigError(f"robot workspace is empty: low {list(low)} must be below high {list(high)}; fix the robot config")
        if not (0 < self.max_translation <= 0.5) or not (0 < self.max_rotation <= np.pi):
            raise ConfigError("robot max_translation must be in (0, 0.5] m and max_rotation in (0, pi] rad per step")
        if self.watchdog_periods < 1:
            raise ConfigError("robot watchdog_periods must be >= 1 control period")
        if self.max_speed is not None and not (0 < self.max_speed <= 2.0):
            raise ConfigError(f"robot max_speed must be in (0, 2] m/s, got {self.max_speed}")

    @property
    def low(self) -> np.ndarray:
        return np.asarray(self.workspace_low, dtype=np.float64)

    @property
    def high(self) -> np.ndarray:
        return np.asarray(self.workspace_high, dtype=np.float64)

    def contains(self, position: Sequence[float], tolerance: float = 1e-9) -> bool:
        p = np.asarray(position, dtype=np.float64)
        return bool(np.all(p >= self.low - tolerance) and np.all(p <= self.high + tolerance))


def clip_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    """`vector` scaled down (direction kept) so that its Euclidean length is at most `limit`."""
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector


def sanitize_action(action: np.ndarray, limits: SafetyLimits) -> np.ndarray | None:
    """Clip a 7-d delta action to the per-step limits; None when it holds NaN/inf (reject, hold pose).

    The limits bound the Euclidean length of the translation and of the rotation vector (per-axis
    clipping would let a diagonal step reach sqrt(3) times the limit)."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != (7,):
        raise ValueError(f"robot action must have shape (7,), got {a.shape}")
    if not np.all(np.isfinite(a)):
        return None
    out = a.copy()
    out[:3] = clip_norm(out[:3], limits.max_translation)
    out[3:6] = clip_norm(out[3:6], limits.max_rotation)
    out[6] = np.clip(out[6], 0.0, 1.0)
    return out


class SpeedLimiter:
    """Caps how fast the target moves per unit time, whatever the call rate (token bucket, Euclidean).

    Why: per-call limits alone let a client that calls 4,800 times a second move the arm 4,800 steps a
    second. The bucket holds at most `BURST_STEPS` steps (of `max_translation`, `max_rotation`) and refills
    at `max_speed` (default one step per control period, +25 %), so a jittery loop at the nominal rate (a
    late tick, then an early one) is never clipped; each action spends what it moves."""

    BURST_STEPS = 2.0

    def __init__(self, limits: SafetyLimits, control_hz: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_translation = self.BURST_STEPS * limits.max_translation  # bucket sizes
        self.max_rotation = self.BURST_STEPS * limits.max_rotation
        self.speed = limits.max_speed if limits.max_speed is not None else 1.25 * limits.max_translation * control_hz
        self.angular_speed = self.speed * limits.max_rotation / limits.max_translation  # the same steps per second
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """A full bucket (after reset/resume the first step may be a whole step)."""
        self._translation, self._rotation = self.max_translation, self.max_rotation
        self._last: float | None = None

    def limit(self, delta: np.ndarray) -> np.ndarray:
        """`delta` with its translation and rotation shortened to what the elapsed time allows."""
        now = self._clock()
        elapsed, self._last = (0.0 if self._last is None else max(0.0, now - self._last)), now
        self._translation = min(self.max_translation, self._translation + self.speed * elapsed)
        self._rotation = min(self.max_rotation, self._rotation + self.angular_speed * elapsed)
        out = np.array(delta, dtype=np.float64)
        out[:3] = clip_norm(out[:3], self._translation)
        out[3:6] = clip_norm(out[3:6], self._rotation)
        self._translation -= float(np.linalg.norm(out[:3]))
        self._rotation -= float(np.linalg.norm(out[3:6]))
        return out


def step_target(target: Pose, delta: np.ndarray, limits: SafetyLimits) -> Pose:
    """The next target: delta applied to the previous *target* (world axes), xyz clipped to the workspace.

    A target outside the box (an arm that starts outside it) is brought back at most `max_translation`
    (Euclidean) per step, never in one jump."""
    previous = np.asarray(target.position, dtype=np.float64)
    position = np.clip(previous + delta[:3], limits.low, limits.high)
    position = previous + clip_norm(position - previous, limits.max_translation)
    euler = compose_rotation(np.asarray(target.euler), delta[3:6])
    return Pose.from_arrays(position, euler, float(delta[6]))


def safe_reset_waypoints(current: Pose, home: Pose, limits: SafetyLimits) -> list[Pose]:
    """Lift (gripper open) to the safe height, travel above home, then descend: never drag through objects."""
    safe_z = limits.safe_height if limits.safe_height is not None else float(limits.high[2])
    current_xyz = np.clip(np.asarray(current.position), limits.low, limits.high)
    lift_z = max(float(current_xyz[2]), safe_z, float(home.position[2]))
    lifted = Pose.from_arrays((current_xyz[0], current_xyz[1], lift_z), current.euler, 1.0)
    above_home = Pose.from_arrays((home.position[0], home.position[1], lift_z), home.euler, 1.0)
    return [lifted, above_home, home]


class Watchdog:
    """Calls `on_trip` once when `feed` has not been called for `timeout_s` (rate mode: stop and hold).

    It arms on the first feed after construction or a trip, so an idle robot that never got an action
    is not "tripped"; a stalled policy is.
    """

    def __init__(self, timeout_s: float, on_trip: Callable[[], None]) -> None:
        self.timeout_s = float(timeout_s)
        self._on_trip = on_trip
        self._last_feed = 0.0
        self._armed = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.trips = 0

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="robot-watchdog", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None

    def feed(self) -> None:
        with self._lock:
            self._last_feed = time.monotonic()
            self._armed = True

    def disarm(self) -> None:
        with self._lock:
            self._armed = False

    def _run(self) -> None:
        poll = max(0.001, self.timeout_s / 8)
        while not self._stop.wait(poll):
            with self._lock:
                tripped = self._armed and time.monotonic() - self._last_feed > self.timeout_s
                if tripped:
                    self._armed = False
                    self.trips += 1
            if tripped:
                try:
                    self._on_trip()
                except Exception:  # the watchdog must survive a failing hold; the next command reports it
                    log.exception("watchdog hold failed")


class StopKeyMonitor:
    """Polls the operator input on its own thread and calls `stop()` the moment the stop key arrives.

    Used as a context manager around a control loop; `triggered` tells the loop to end the trial. Keys
    other than the stop key are kept in `other_keys` for the loop to read (e.g. success/failure labels).
    """

    def __init__(self, operator: OperatorInput, stop: Callable[[], None], keys: Sequence[str] = ("s", " "),
                 poll_s: float = 0.01) -> None:
        self.operator = operator
        self._stop_fn = stop
        self.keys = tuple(keys)
        self.poll_s = poll_s
        self.triggered = threading.Event()
        self.other_keys: list[str] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> StopKeyMonitor:
        self._done.clear()
        self._thread = threading.Thread(target=self._run, name="stop-key", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def take_keys(self) -> list[str]:
        with self._lock:
            keys, self.other_keys = self.other_keys, []
        return keys

    def _run(self) -> None:
        while not self._done.is_set():
            key = self.operator.poll_key()
            if key is None:
                self._done.wait(self.poll_s)
            elif key in self.keys:
                log.warning("operator stop key %r: halting motion", key)
                self._stop_fn()
                self.triggered.set()
            else:
                with self._lock:
                    self.other_keys.append(key)
