"""MuJoCo tabletop robot: EE-delta gripper, cubes and target regions, tasks with success predicates and
scripted experts, `widowx` and `franka` profiles.

Simulation time advances by exactly one control period per `send_action` (both control modes), so runs
are deterministic for a seed and never depend on the machine's speed; `control_mode` and `control_hz`
come from the profile (WidowX: blocking at 5 Hz; Franka: rate at 10 Hz) so loops written against the
sim behave as on the real arm. Renders use MuJoCo's offscreen renderer (MUJOCO_GL=egl headless) on one
render thread that owns the GL contexts (an EGL context belongs to the thread that made it), so any
thread (an rpc server, a recorder) can ask for frames.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from remix.common.errors import ConfigError, HardwareError
from robots.cameras import RenderCamera
from robots.geometry import euler_to_matrix, matrix_to_euler, matrix_to_quat_xyzw, quat_xyzw_to_matrix
from robots.robot import ArmRobot
from robots.safety import Pose, SafetyLimits
from robots.sim_scene import (
    CUBE_HALF,
    FINGER_TRAVEL,
    OBJECTS,
    REGION_RADIUS,
    REGIONS,
    TASKS,
    SimTask,
    build_scene_xml,
)

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"  # headless offscreen rendering; must be set before mujoco is imported

CameraPlacement = tuple[tuple[float, float, float], tuple[float, float, float]]


@dataclass(frozen=True)
class SimProfile:
    """What makes the sim behave like one arm's setup: limits, rate, home, table and camera placement."""

    control_mode: str
    control_hz: float
    workspace_low: tuple[float, float, float]
    workspace_high: tuple[float, float, float]
    max_translation: float
    max_rotation: float
    home: tuple[float, ...]
    table_center: tuple[float, float]
    table_half: tuple[float, float]
    object_low: tuple[float, float]  # xy box where objects and regions are placed on reset
    object_high: tuple[float, float]
    cameras: dict[str, CameraPlacement] = field(default_factory=dict)


PROFILES: dict[str, SimProfile] = {
    # BridgeData WidowX: blocking 0.2 s steps, the BridgeData workspace box, a fixed side camera
    "widowx": SimProfile("blocking", 5.0, (0.1, -0.15, 0.01), (0.45, 0.25, 0.25), 0.05, 0.25,
                         (0.3, 0.0, 0.15, 0.0, 0.0, 0.0, 1.0), (0.28, 0.05), (0.3, 0.35), (0.16, -0.11), (0.42, 0.21),
                         {"cam0": ((0.3, -0.5, 0.42), (0.3, 0.05, 0.0)), "overhead": ((0.3, 0.05, 0.75), (0.3051, 0.05, 0.0))}),
    # Franka Panda at 10 Hz, over-the-shoulder camera
    "franka": SimProfile("rate", 10.0, (0.3, -0.3, 0.01), (0.7, 0.3, 0.4), 0.04, 0.2,
                         (0.5, 0.0, 0.25, 0.0, 0.0, 0.0, 1.0), (0.5, 0.0), (0.35, 0.45), (0.36, -0.22), (0.64, 0.22),
                         {"cam0": ((-0.05, 0.3, 0.6), (0.5, 0.0, 0.0)), "overhead": ((0.5, 0.0, 0.9), (0.5051, 0.0, 0.0))}),
}

LIFT_Z = 0.12
MIN_SEPARATION = 0.1


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def _load_triton_before_gl() -> None:
    """Load triton (torch's compiler, with its own LLVM) before Mesa's EGL brings in another LLVM.

    In the other order, the first later import of torchvision or diffusers (e.g. loading a policy after
    the sim rendered a goal image) segfaults the process. Without triton installed there is no clash.
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


class SimRobot(ArmRobot):
    """A simulated arm over the MuJoCo tabletop; see the module docstring."""

    def __init__(self, profile: str = "widowx", task: str = "put_red_in_green", name: str | None = None,
                 cameras: Mapping[str, Sequence[int]] | None = None, control_mode: str | None = None,
                 control_hz: float | None = None, watchdog_periods: float = 2.0, seed: int = 0,
                 max_translation: float | None = None) -> None:
        if profile not in PROFILES:
            raise ConfigError(f"unknown sim profile {profile!r}; use one of {sorted(PROFILES)}")
        self.profile_name = profile
        self.profile = p = PROFILES[profile]
        camera_shapes = {"cam0": (64, 64)} if cameras is None else {k: tuple(int(x) for x in v) for k, v in cameras.items()}
        unknown = sorted(set(camera_shapes) - set(p.cameras))
        if unknown:
            raise ConfigError(f"sim profile {profile!r} has no camera {unknown}; use some of {sorted(p.cameras)}")
        step = p.max_translation if max_translation is None else float(max_translation)
        limits = SafetyLimits(p.workspace_low, p.workspace_high, step, p.max_rotation, watchdog_periods)
        render_cameras = {cam: RenderCamera(cam, self._renderer_fn(cam), h, w) for cam, (h, w) in camera_shapes.items()}
        super().__init__(name or f"sim-{profile}", control_mode or p.control_mode,
                         p.control_hz if control_hz is None else control_hz, limits,
                         Pose.from_state(p.home), render_cameras)
        self.set_task(task)
        self._rng = np.random.default_rng(seed)
        self._model = None
        self._data = None
        self._renderers: dict[tuple[int, int], object] = {}
        self._render_thread: ThreadPoolExecutor | None = None
        self._phase = "approach"
        self._phase_steps = 0
        self._halted = threading.Event()

    # ------------------------------------------------------------------------------------------ tasks
    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(sorted(TASKS))

    @property
    def task(self) -> SimTask:
        return self._task

    def set_task(self, task: str) -> None:
        if task not in TASKS:
            raise ConfigError(f"unknown sim task {task!r}; use one of {sorted(TASKS)}")
        self._task = TASKS[task]

    def object_position(self, name: str) -> np.ndarray:
        self._require_connected()
        return self._data.body(name).xpos.copy()

    def region_position(self, name: str) -> np.ndarray:
        self._require_connected()
        return self._data.mocap_pos[self._region_mocap[name]].copy()

    def check_success(self) -> bool:
        self._require_connected()
        with self._lock:
            cube = self.object_position(self._task.object)
            if self._task.region is None:
                return bool(cube[2] > self._task.lift_height)
            region = self.region_position(self._task.region)
            inside = np.linalg.norm(cube[:2] - region[:2]) < REGION_RADIUS
            resting = cube[2] < CUBE_HALF + 0.01
            released = self._read_pose().gripper > 0.5
            return bool(inside and resting and released)

    # ---------------------------------------------------------------------------------------- physics
    def _connect(self) -> None:
        _load_triton_before_gl()
        try:
            import mujoco
        except ImportError:
            raise HardwareError("the sim robot needs MuJoCo; install it with `pip install mujoco` (extra: remix-stack[sim])") from None
        p = self.profile
        xml = build_scene_xml(p.table_center, p.table_half, np.asarray(p.home), p.cameras)
        self._mujoco = mujoco
        self._model = mujoco.MjModel.from_xml_string(xml)
        self._data = mujoco.MjData(self._model)
        self._substeps = max(1, int(round(self.period_s / self._model.opt.timestep)))
        self._target_mocap = self._model.body("target").mocapid[0]
        self._region_mocap = {name: self._model.body(f"region_{name}").mocapid[0] for name in REGIONS}
        self._finger_act = [self._model.actuator("left_finger").id, self._model.actuator("right_finger").id]
        self._finger_qpos = [self._model.joint(j).qposadr[0] for j in ("left_finger", "right_finger")]
        self._randomize_scene(self._rng)
        self._render_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.name}-render")

    def _disconnect(self) -> None:
        if self._render_thread is not None:
            self._render_thread.submit(self._close_renderers).result()
            self._render_thread.shutdown(wait=True)
            self._render_thread = None

    def _randomize_scene(self, rng: np.random.Generator) -> None:
        mujoco, model, data = self._mujoco, self._model, self._data
        mujoco.mj_resetData(model, data)
        low, high = np.asarray(self.profile.object_low), np.asarray(self.profile.object_high)
        names = [*OBJECTS, *REGIONS]
        for _ in range(1000):
            spots = rng.uniform(low, high, size=(len(names), 2))
            gaps = np.linalg.norm(spots[:, None] - spots[None], axis=-1) + np.eye(len(names))
            if gaps.min() >= MIN_SEPARATION:
                break
        else:  # pragma: no cover - the placement boxes are far larger than needed
            raise ConfigError(f"sim profile {self.profile_name!r}: cannot place objects {MIN_SEPARATION} m apart")
        for name, xy in zip(names, spots):
            if name in OBJECTS:
                adr = model.joint(f"{name}_joint").qposadr[0]
                yaw = rng.uniform(-np.pi / 4, np.pi / 4)
                data.qpos[adr : adr + 3] = (xy[0], xy[1], CUBE_HALF + 0.001)
                data.qpos[adr + 3 : adr + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))  # MuJoCo quats are wxyz
            else:
                data.mocap_pos[self._region_mocap[name]] = (xy[0], xy[1], 0.0)
        self._place_hand(self.home)
        mujoco.mj_forward(model, data)
        for _ in range(50):  # let the cubes settle
            mujoco.mj_step(model, data)

    def _place_hand(self, pose: Pose) -> None:
        adr = self._model.joint("hand_joint").qposadr[0]
        quat = self._quat_wxyz(pose.euler)
        self._data.qpos[adr : adr + 3] = pose.position
        self._data.qpos[adr + 3 : adr + 7] = quat
        self._data.mocap_pos[self._target_mocap] = pose.position
        self._data.mocap_quat[self._target_mocap] = quat
        for act, qadr in zip(self._finger_act, self._finger_qpos):
            self._data.ctrl[act] = pose.gripper * FINGER_TRAVEL
            self._data.qpos[qadr] = pose.gripper * FINGER_TRAVEL

    @staticmethod
    def _quat_wxyz(euler: Sequence[float]) -> np.ndarray:
        x, y, z, w = matrix_to_quat_xyzw(euler_to_matrix(np.asarray(euler)))
        return np.array([w, x, y, z])

    def _drive(self, target: Pose, duration_s: float) -> None:
        """Move the mocap target linearly to `target` over 60% of `duration_s`, stepping physics throughout."""
        mujoco, model, data = self._mujoco, self._model, self._data
        steps = max(1, int(round(duration_s / model.opt.timestep)))
        start_pos = data.mocap_pos[self._target_mocap].copy()
        w, x, y, z = data.mocap_quat[self._target_mocap]
        start_yaw = float(matrix_to_euler(quat_xyzw_to_matrix(np.array([x, y, z, w])))[2])
        yaw_delta = _wrap(target.euler[2] - start_yaw)
        for act in self._finger_act:
            data.ctrl[act] = target.gripper * FINGER_TRAVEL
        ramp = max(1, int(0.6 * steps))
        for k in range(steps):
            if self._halted.is_set():
                self._hold()
                return
            if k < ramp:
                alpha = (k + 1) / ramp
                data.mocap_pos[self._target_mocap] = start_pos + alpha * (np.asarray(target.position) - start_pos)
                data.mocap_quat[self._target_mocap] = self._quat_wxyz((0.0, 0.0, start_yaw + alpha * yaw_delta))
            mujoco.mj_step(model, data)

    # ------------------------------------------------------------------------------------------- hooks
    def _constrain_target(self, target: Pose) -> Pose:
        # the sim hand keeps the gripper pointing down: only yaw is controllable
        return target.replace(euler=(0.0, 0.0, target.euler[2]))

    def _read_pose(self) -> Pose:
        data = self._data
        if data is None:
            return self.home
        site = data.site("ee")
        euler = matrix_to_euler(site.xmat.reshape(3, 3))
        opening = float(np.mean([data.qpos[a] for a in self._finger_qpos]) / FINGER_TRAVEL)
        return Pose.from_arrays(site.xpos, euler, float(np.clip(opening, 0.0, 1.0)))

    def _command(self, target: Pose) -> bool:
        self._drive(target, self.period_s)
        return True

    def _motion_clock(self) -> float:
        """Simulated seconds: the speed limit counts the physics' time (each command drives one period)."""
        return float(self._data.time) if self._data is not None else 0.0

    def _move_to(self, target: Pose) -> bool:
        self._drive(target, 1.0)
        return True

    def _hold(self) -> None:
        if self._data is None:
            return
        pose = self._read_pose()
        self._data.mocap_pos[self._target_mocap] = pose.position
        self._data.mocap_quat[self._target_mocap] = self._quat_wxyz(pose.euler)

    def _halt(self) -> None:
        self._halted.set()  # the running _drive holds and returns at its next substep

    def _clear_halt(self) -> None:
        self._halted.clear()

    def _reset(self, seed: int | None) -> None:
        # a scene reset is a fresh, settled scene; there is nothing to drag through
        self._randomize_scene(np.random.default_rng(seed) if seed is not None else self._rng)
        self._phase, self._phase_steps = "approach", 0

    # ---------------------------------------------------------------------------------------- rendering
    def _renderer_fn(self, camera: str):
        def render(height: int, width: int) -> np.ndarray:
            if self._render_thread is None:
                raise HardwareError(f"{self.name} is not connected; use it as a context manager")
            return self._render_thread.submit(self._render, camera, height, width).result()

        return render

    def _render(self, camera: str, height: int, width: int) -> np.ndarray:
        """Runs on the render thread, which owns every GL context (EGL contexts are bound to one thread)."""
        with self._lock:
            renderer = self._renderers.get((height, width))
            if renderer is None:
                renderer = self._renderers[(height, width)] = self._mujoco.Renderer(self._model, height, width)
            renderer.update_scene(self._data, camera=camera)  # type: ignore[attr-defined]
            return renderer.render().copy()  # type: ignore[attr-defined]

    def _close_renderers(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()  # type: ignore[attr-defined]
        self._renderers.clear()

    # ------------------------------------------------------------------------------------------- expert
    def expert_action(self) -> np.ndarray:
        """The scripted expert's next action for the current task (a 7-d delta within the step limits).

        A phase machine over the measured scene: approach above the cube (yaw aligned to its faces),
        descend, close, lift, carry above the region, lower, release, retreat. It restarts from
        approach when the cube slips or a phase stalls, so it also recovers from perturbations.
        """
        self._require_connected()
        with self._lock:
            ee = self._read_pose()
            cube = self.object_position(self._task.object)
            cube_yaw = float(matrix_to_euler(self._data.body(self._task.object).xmat.reshape(3, 3))[2])
        ee_xyz = np.asarray(ee.position)
        grasp_yaw = ee.euler[2] + _wrap(4 * (cube_yaw - ee.euler[2])) / 4  # nearest face-aligned yaw
        held = np.linalg.norm(cube - ee_xyz) < 0.025 and ee.gripper < 0.8  # the cube sits between closed fingers
        phase = self._phase
        goal_xyz, gripper, yaw = ee_xyz, 1.0, ee.euler[2]
        if phase in ("lift", "carry", "lower") and not held:
            phase = "approach"
        if phase == "approach":
            goal_xyz, yaw = np.array([cube[0], cube[1], cube[2] + 0.07]), grasp_yaw
            if np.linalg.norm(goal_xyz - ee_xyz) < 0.012 and abs(_wrap(yaw - ee.euler[2])) < 0.05:
                phase = "descend"
        if phase == "descend":
            goal_xyz, yaw = np.array([cube[0], cube[1], cube[2]]), grasp_yaw
            if np.linalg.norm(goal_xyz - ee_xyz) < 0.008:
                phase = "grasp"
        if phase == "grasp":
            goal_xyz, gripper = ee_xyz, 0.0
            if ee.gripper < (CUBE_HALF + 0.002) / FINGER_TRAVEL:  # fingers rest on the cube faces
                phase = "lift"
        if phase == "lift":
            goal_xyz, gripper = np.array([ee_xyz[0], ee_xyz[1], LIFT_Z]), 0.0
            if self._task.region is not None and ee_xyz[2] > LIFT_Z - 0.01:
                phase = "carry"
        if phase == "carry":
            region = self.region_position(self._task.region)  # type: ignore[arg-type]
            goal_xyz, gripper = np.array([region[0], region[1], LIFT_Z]), 0.0
            if np.linalg.norm(goal_xyz[:2] - ee_xyz[:2]) < 0.01:
                phase = "lower"
        if phase == "lower":
            region = self.region_position(self._task.region)  # type: ignore[arg-type]
            goal_xyz, gripper = np.array([region[0], region[1], CUBE_HALF + 0.012]), 0.0
            if ee_xyz[2] < CUBE_HALF + 0.02:
                phase = "release"
        if phase == "release":
            goal_xyz, gripper = ee_xyz, 1.0
            if ee.gripper > 0.8:
                phase = "retreat"
        if phase == "retreat":
            goal_xyz = np.array([ee_xyz[0], ee_xyz[1], LIFT_Z])
        self._phase_steps = self._phase_steps + 1 if phase == self._phase else 0
        if self._phase_steps > 30 and phase not in ("retreat", "lift"):
            phase, self._phase_steps = "approach", 0  # stalled: start over
        self._phase = phase
        target = self.target
        delta = np.zeros(7)
        delta[:3] = np.clip(goal_xyz - np.asarray(target.position), -self.limits.max_translation, self.limits.max_translation)
        delta[5] = np.clip(_wrap(yaw - target.euler[2]), -self.limits.max_rotation, self.limits.max_rotation)
        delta[6] = gripper
        return delta.astype(np.float32)
