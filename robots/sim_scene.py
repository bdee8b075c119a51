"""The MuJoCo tabletop, built in code (no downloaded assets), and the tasks defined on it.

The "hand" is a free body welded to a mocap target, so end-effector deltas drive it the way an arm's
Cartesian controller would; two slide fingers on position actuators grasp by friction. Its identity
orientation points the gripper down with the fingers opening along y, so the sim state reports
orientation relative to gripper-down (roll = pitch = 0, yaw about world z). Objects are two 4 cm cubes;
target regions are flat coloured pads (mocap bodies, so a reset can move them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FINGER_TRAVEL = 0.04  # m per finger from closed to open
CUBE_HALF = 0.02
REGION_RADIUS = 0.05
OBJECTS = {"red": (0.85, 0.15, 0.15), "blue": (0.15, 0.3, 0.85)}
REGIONS = {"green": (0.2, 0.75, 0.25), "yellow": (0.9, 0.8, 0.2)}


@dataclass(frozen=True)
class SimTask:
    """A task: move `object` into `region` (and let go), or lift it above `lift_height`."""

    name: str
    object: str
    region: str | None
    instruction: str
    lift_height: float = 0.08


TASKS: dict[str, SimTask] = {
    task.name: task
    for task in (
        SimTask("put_red_in_green", "red", "green", "put the red cube in the green region"),
        SimTask("put_blue_in_yellow", "blue", "yellow", "put the blue cube in the yellow region"),
        SimTask("lift_red", "red", None, "lift the red cube"),
    )
}


def _rgba(rgb: tuple[float, float, float]) -> str:
    return f"{rgb[0]} {rgb[1]} {rgb[2]} 1"


def build_scene_xml(table_center: tuple[float, float], table_half: tuple[float, float], home: np.ndarray,
                    cameras: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]],
                    render_size: int = 256) -> str:
    """MJCF for the tabletop; `cameras` maps name -> (position, look-at point)."""
    cx, cy = table_center
    hx, hy = table_half
    objects = "\n".join(
        f"""    <body name="{name}" pos="{cx} {cy + 0.1 * i} {CUBE_HALF}">
      <freejoint name="{name}_joint"/>
      <geom name="{name}" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="0.05" rgba="{_rgba(rgb)}"
            friction="1.5 0.02 0.001" condim="4"/>
    </body>"""
        for i, (name, rgb) in enumerate(OBJECTS.items())
    )
    regions = "\n".join(
        f"""    <body name="region_{name}" mocap="true" pos="{cx} {cy - 0.1 * (i + 1)} 0">
      <geom type="cylinder" size="{REGION_RADIUS} 0.0005" pos="0 0 0.0005" rgba="{_rgba(rgb)}" contype="0" conaffinity="0"/>
    </body>"""
        for i, (name, rgb) in enumerate(REGIONS.items())
    )
    camera_xml = []
    for name, (pos, look_at) in cameras.items():
        forward = np.asarray(look_at, float) - np.asarray(pos, float)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        axes = " ".join(f"{v:.5f}" for v in (*right, *up))
        camera_xml.append(f'    <camera name="{name}" pos="{pos[0]} {pos[1]} {pos[2]}" xyaxes="{axes}" fovy="55"/>')
    hx_, hy_, hz_ = (float(v) for v in home[:3])
    return f"""<mujoco model="remix_tabletop">
  <option timestep="0.002" cone="elliptic" impratio="10" integrator="implicitfast"/>
  <visual><global offwidth="{render_size}" offheight="{render_size}"/><quality shadowsize="0"/></visual>
  <asset>
    <texture name="wood" type="2d" builtin="checker" rgb1=".62 .5 .38" rgb2=".58 .46 .34" width="64" height="64"/>
    <material name="wood" texture="wood" texrepeat="6 6"/>
  </asset>
  <worldbody>
    <light pos="{cx} {cy} 1.5" dir="0 0 -1" directional="true" diffuse=".8 .8 .8"/>
    <geom name="floor" type="plane" size="3 3 .1" pos="0 0 -0.75" rgba=".3 .3 .33 1"/>
    <geom name="table" type="box" pos="{cx} {cy} -0.02" size="{hx} {hy} 0.02" material="wood" friction="0.8 0.02 0.001"/>
{regions}
{objects}
    <body name="target" mocap="true" pos="{hx_} {hy_} {hz_}"/>
    <body name="hand" pos="{hx_} {hy_} {hz_}" gravcomp="1">
      <freejoint name="hand_joint"/>
      <site name="ee" pos="0 0 0" size="0.004" rgba="1 1 1 0"/>
      <geom name="palm" type="box" pos="0 0 0.045" size="0.02 0.055 0.012" mass="0.3" rgba=".2 .2 .22 1"/>
      <geom name="wrist" type="cylinder" pos="0 0 0.09" size="0.018 0.035" mass="0.2" rgba=".25 .25 .28 1"/>
      <body name="left_finger" pos="0 0.005 0">
        <joint name="left_finger" type="slide" axis="0 1 0" range="0 {FINGER_TRAVEL}" damping="5"/>
        <geom name="left_finger" type="box" pos="0 0.005 0.012" size="0.011 0.005 0.022" mass="0.02"
              friction="2 0.02 0.001" condim="4" rgba=".1 .1 .1 1"/>
      </body>
      <body name="right_finger" pos="0 -0.005 0">
        <joint name="right_finger" type="slide" axis="0 -1 0" range="0 {FINGER_TRAVEL}" damping="5"/>
        <geom name="right_finger" type="box" pos="0 -0.005 0.012" size="0.011 0.005 0.022" mass="0.02"
              friction="2 0.02 0.001" condim="4" rgba=".1 .1 .1 1"/>
      </body>
    </body>
{chr(10).join(camera_xml)}
  </worldbody>
  <equality>
    <weld body1="target" body2="hand" solref="0.01 1"/>
  </equality>
  <contact>
    <exclude body1="hand" body2="left_finger"/>
    <exclude body1="hand" body2="right_finger"/>
    <exclude body1="left_finger" body2="right_finger"/>  <!-- closing on nothing overshoots; touching fingers then lock -->
  </contact>
  <actuator>
    <position name="left_finger" joint="left_finger" kp="100" ctrlrange="0 {FINGER_TRAVEL}" forcerange="-20 20"/>
    <position name="right_finger" joint="right_finger" kp="100" ctrlrange="0 {FINGER_TRAVEL}" forcerange="-20 20"/>
  </actuator>
</mujoco>
"""
