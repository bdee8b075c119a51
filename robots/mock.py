"""A deterministic kinematic robot with fault injection, for tests and dry runs without hardware.

The arm reaches each (clipped) target at once, so every run is reproducible; each camera renders a
small synthetic image of the state (a disc at the gripper's xy, sized by height, coloured by the
gripper opening, with a yaw tick). Faults can be scheduled from config (`faults: {reflex: [5]}` =
at the 5th command after reset) or injected from a test with `inject(...)`, to exercise every recovery
path: camera timeout, IK failure, reflex error and a slow policy (an observation that stalls past the
watchdog).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from remix.common.errors import ConfigError
from robots.cameras import CameraTimeout, RenderCamera
from robots.cameras import camera_shapes as shapes_of
from robots.robot import ArmFault, ArmRobot, ControlMode
from robots.safety import Pose, SafetyLimits

FAULT_KINDS = ("camera_timeout", "ik_failure", "reflex", "slow_policy")


@dataclass
class _PendingFault:
    kind: str
    at_step: int | None  # None: the next opportunity
    times: int  # camera_timeout: consecutive failed reads


class MockRobot(ArmRobot):
    """Kinematic mock arm; see the module docstring."""

    def __init__(self, name: str = "mock", control_mode: str = "rate", control_hz: float = 10.0,
                 cameras: Mapping[str, Sequence[int]] | None = None,
                 workspace_low: Sequence[float] = (0.1, -0.15, -0.01), workspace_high: Sequence[float] = (0.45, 0.25, 0.25),
                 max_translation: float = 0.05, max_rotation: float = 0.25, watchdog_periods: float = 2.0,
                 safe_height: float | None = None, home: Sequence[float] = (0.3, 0.0, 0.15, 0.0, 0.0, 0.0, 1.0),
                 moving_time_s: float = 0.0, slow_policy_s: float | None = None,
                 faults: Mapping[str, Sequence[int]] | None = None) -> None:
        limits = SafetyLimits(tuple(workspace_low), tuple(workspace_high), max_translation, max_rotation,  # type: ignore[arg-type]
                              watchdog_periods, safe_height)
        if len(home) != 7:
            raise ConfigError(f"mock robot home must be 7 numbers (x, y, z, roll, pitch, yaw, gripper), got {list(home)}")
        camera_shapes = {"cam0": (64, 64)} if cameras is None else shapes_of(cameras)
        render_cameras = {
            cam: RenderCamera(cam, self._renderer(cam, index), int(shape[0]), int(shape[1]))
            for index, (cam, shape) in enumerate(camera_shapes.items())
        }
        super().__init__(name, control_mode, control_hz, limits, Pose.from_state(home), render_cameras)
        self.moving_time_s = float(moving_time_s)
        self.slow_policy_s = float(slow_policy_s) if slow_policy_s is not None else 3.0 * self.period_s
        self._pose = self.home
        self._pending: list[_PendingFault] = []
        self._camera_failures = 0
        self._halted = threading.Event()
        self.step_index = 0  # commands since the last reset
        self._moves = 0  # commands ever (the blocking mock's motion clock)
        self.commands: list[Pose] = []  # every target the "arm" accepted, for tests
        for kind, steps in (faults or {}).items():
            for step in steps:
                self.inject(kind, at_step=int(step))

    # ------------------------------------------------------------------------------------ fault injection
    def inject(self, kind: str, at_step: int | None = None, times: int = 1) -> None:
        """Schedule a fault at command `at_step` after reset (None = next chance); `times` for camera_timeout."""
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown mock fault {kind!r}; use one of {list(FAULT_KINDS)}")
        self._pending.append(_PendingFault(kind, at_step, int(times)))

    def _take(self, kind: str) -> _PendingFault | None:
        for fault in self._pending:
            if fault.kind == kind and (fault.at_step is None or fault.at_step == self.step_index):
                self._pending.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------------------------------- rendering
    def _renderer(self, camera: str, index: int):
        def render(height: int, width: int) -> np.ndarray:
            if self._camera_failures > 0:
                self._camera_failures -= 1
                raise CameraTimeout(f"camera {camera!r} timed out (injected)")
            return self.render(height, width, view=index)

        return render

    def render(self, height: int, width: int, view: int = 0) -> np.ndarray:
        """A synthetic RGB image of the state: position -> disc centre/size, gripper -> colour, yaw -> tick."""
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[:] = (60 + 20 * view, 50, 40)
        low, high = self.limits.low, self.limits.high
        x, y, z = np.asarray(self._pose.position)
        u = (y - low[1]) / (high[1] - low[1])
        v = (x - low[0]) / (high[0] - low[0])
        center = (int(round(u * (width - 1))), int(round((1 - v) * (height - 1))))
        radius = max(2, int(round((0.05 + 0.15 * (z - low[2]) / (high[2] - low[2])) * min(height, width))))
        g = float(np.clip(self._pose.gripper, 0, 1))
        color = (int(255 * (1 - g)), int(255 * g), 80)
        cv2.circle(image, center, radius, color, thickness=-1, lineType=cv2.LINE_8)
        yaw = self._pose.euler[2]
        tip = (int(center[0] + radius * 1.6 * np.sin(yaw)), int(center[1] - radius * 1.6 * np.cos(yaw)))
        cv2.line(image, center, tip, (255, 255, 255), 1, lineType=cv2.LINE_8)
        return image

    # ------------------------------------------------------------------------------------------- hooks
    def _connect(self) -> None:
        self._pose = self.home

    def _disconnect(self) -> None:
        pass

    def _read_pose(self) -> Pose:
        return self._pose

    def _before_observation(self) -> None:
        fault = self._take("camera_timeout")
        if fault is not None:
            self._camera_failures = fault.times
        if self._take("slow_policy") is not None:
            time.sleep(self.slow_policy_s)

    def _motion_clock(self) -> float:
        """Rate mode: the wall clock. Blocking mode: a real arm's move takes a control period, which the
        instant mock adds per command, so a blocking loop is not slowed by the speed limit."""
        blocking = self.control_mode is ControlMode.BLOCKING
        return time.monotonic() + (self._moves * self.period_s if blocking else 0.0)

    def _command(self, target: Pose) -> bool:
        self._moves += 1
        self.step_index += 1
        if self._take("reflex") is not None:
            raise ArmFault("cartesian_reflex (injected)")
        if self._take("ik_failure") is not None:
            return False
        if self._halted.is_set() or (self.moving_time_s > 0 and self._halted.wait(self.moving_time_s)):
            return True  # halted mid-move: the arm stays where it was
        self._pose = target
        self.commands.append(target)
        return True

    def _move_to(self, target: Pose) -> bool:
        self._pose = target
        return True

    def _hold(self) -> None:
        pass  # a kinematic arm is always at its last target

    def _halt(self) -> None:
        self._halted.set()  # ends a blocking move at once

    def _clear_halt(self) -> None:
        self._halted.clear()

    def _recover(self, fault: ArmFault) -> None:
        pass  # the injected fault clears itself; the arm holds where it is

    def _reset(self, seed: int | None) -> None:
        super()._reset(seed)
        self.step_index = 0
