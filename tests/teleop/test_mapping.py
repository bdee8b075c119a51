"""Controller -> action mapping and the keyboard device."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remix.common.errors import ConfigError
from robots.geometry import euler_to_matrix, matrix_to_euler
from robots.robot import ActionSpec, Observation
from teleop.device import TeleopEvent
from teleop.keyboard import KeyboardConfig, KeyboardTeleop
from teleop.mapping import ControllerMapper, MappingConfig
from teleop.protocol import ControllerReading
from teleop.rotations import from_rotvec, to_rotvec

HOME = np.array([0.3, 0.0, 0.15, 0.0, 0.0, 0.0, 1.0])
REST = np.eye(4)
REST[:3, 3] = (0.1, -0.3, -0.3)


def reading(offset=(0.0, 0.0, 0.0), rotvec=(0.0, 0.0, 0.0), grip=True, trigger=0.0, buttons=()) -> ControllerReading:
    pose = REST.copy()
    pose[:3, 3] += offset
    pose[:3, :3] = from_rotvec(np.array(rotvec)) @ pose[:3, :3]
    pressed = set(buttons) | ({"RG"} if grip else set())
    return ControllerReading({"r": pose}, frozenset(pressed), {"rightTrig": (trigger,)}, frozenset({"r"}))


def drive(mapper: ControllerMapper, r: ControllerReading, steps: int) -> list[np.ndarray]:
    """Run the mapping against a perfect robot (applies every action)."""
    actions = []
    for _ in range(steps):
        command = mapper.step(r)
        mapper.applied(command.action)
        actions.append(command.action)
    return actions


def make_mapper(**overrides) -> ControllerMapper:
    mapper = ControllerMapper(MappingConfig(**overrides), robot_max_translation=0.05, robot_max_rotation=0.25)
    mapper.reset(HOME)
    return mapper


def test_released_dead_man_holds_still() -> None:
    mapper = make_mapper()
    command = mapper.step(reading(offset=(0.2, 0, 0), grip=False, trigger=1.0))
    assert not command.engaged and command.connected
    assert np.allclose(command.action, [0, 0, 0, 0, 0, 0, 1.0])  # gripper not closed without the dead-man


def test_pushing_away_from_the_operator_moves_the_robot_forward_in_limited_steps() -> None:
    mapper = make_mapper(max_step_translation=0.02)
    mapper.step(reading())  # press: origins
    actions = drive(mapper, reading(offset=(0.0, 0.0, -0.05)), steps=4)  # headset -z = away from the user
    assert [a[0] for a in actions] == pytest.approx([0.02, 0.02, 0.01, 0.0])
    assert np.allclose(np.array(actions)[:, 1:6], 0.0)


def test_up_and_right_map_to_base_z_and_minus_y_with_gain() -> None:
    mapper = make_mapper(position_gain=2.0)
    mapper.step(reading())
    total = np.sum(drive(mapper, reading(offset=(0.01, 0.01, 0.0)), steps=5), axis=0)
    assert total[:3] == pytest.approx([0.0, -0.02, 0.02])


def test_norm_limit_keeps_direction() -> None:
    mapper = make_mapper(max_step_translation=0.01)
    mapper.step(reading())
    action = mapper.step(reading(offset=(-0.1, 0.1, -0.1))).action
    assert np.linalg.norm(action[:3]) == pytest.approx(0.01)
    assert action[:3] / np.linalg.norm(action[:3]) == pytest.approx(np.array([1, 1, 1]) / np.sqrt(3))


def test_twisting_about_headset_up_turns_the_gripper_about_base_z() -> None:
    mapper = make_mapper()
    mapper.step(reading())
    total = euler_to_matrix(np.zeros(3))
    for action in drive(mapper, reading(rotvec=(0.0, 0.3, 0.0)), steps=4):
        total = euler_to_matrix(action[3:6]) @ total
        assert np.linalg.norm(to_rotvec(euler_to_matrix(action[3:6]))) <= 0.15 + 1e-9
    assert matrix_to_euler(total) == pytest.approx([0.0, 0.0, 0.3], abs=1e-6)


def test_rotation_can_be_disabled() -> None:
    mapper = make_mapper(enable_rotation=False)
    mapper.step(reading())
    assert np.allclose(mapper.step(reading(rotvec=(0.2, 0.1, 0.0))).action[3:6], 0.0)


def test_clutch_release_and_repress_takes_new_origins_without_a_jump() -> None:
    mapper = make_mapper()
    mapper.step(reading())
    drive(mapper, reading(offset=(0.0, 0.0, -0.02)), steps=3)
    assert not mapper.step(reading(offset=(0.0, 0.3, 0.0), grip=False)).engaged  # hand moves back freely
    command = mapper.step(reading(offset=(0.0, 0.3, 0.0)))  # pressed again far away
    assert command.engaged and np.allclose(command.action[:6], 0.0)


def test_trigger_closes_the_gripper_and_release_opens_it() -> None:
    mapper = make_mapper()
    assert mapper.step(reading(trigger=0.9)).action[6] == 0.0
    assert mapper.step(reading(trigger=0.2)).action[6] == 1.0


def test_buttons_fire_once_on_press_and_not_when_held_through_a_reset() -> None:
    mapper = make_mapper()
    mapper.step(reading(grip=False))
    assert mapper.step(reading(grip=False, buttons=("A",))).event is TeleopEvent.KEEP
    assert mapper.step(reading(grip=False, buttons=("A",))).event is None  # held
    mapper.reset(HOME)
    assert mapper.step(reading(grip=False, buttons=("B",))).event is None  # held from before the reset
    assert mapper.step(reading(grip=False)).event is None
    assert mapper.step(reading(grip=False, buttons=("B",))).event is TeleopEvent.DISCARD
    assert mapper.step(reading(grip=False, buttons=("B", "RJ"))).event is TeleopEvent.RERECORD


def test_a_tap_between_two_control_steps_still_fires() -> None:
    mapper = make_mapper()
    mapper.step(reading(grip=False))
    tapped = mapper.step(reading(grip=False), tapped=frozenset({"A"}))  # pressed and released between steps
    assert tapped.event is TeleopEvent.KEEP
    assert mapper.step(reading(grip=False, buttons=("A",)), tapped=frozenset({"A"})).event is TeleopEvent.KEEP
    assert mapper.step(reading(grip=False, buttons=("A",)), tapped=frozenset({"A"})).event is None  # still held


def test_lost_headset_holds_and_reengages_without_a_jump() -> None:
    mapper = make_mapper()
    mapper.step(reading())
    drive(mapper, reading(offset=(0.0, 0.0, -0.01)), steps=2)
    lost = mapper.step(None)
    assert not lost.connected and not lost.engaged and np.allclose(lost.action[:6], 0.0)
    back = mapper.step(reading(offset=(0.0, 0.2, 0.0)))
    assert back.engaged and np.allclose(back.action[:6], 0.0)


def test_after_a_workspace_wall_the_arm_follows_the_hand_back_at_once() -> None:
    mapper = make_mapper()
    mapper.step(reading())
    for _ in range(3):  # the hand pushes 6 cm forward, the robot stops at a wall after 1 cm
        asked = mapper.step(reading(offset=(0.0, 0.0, -0.06))).action
        mapper.applied(np.concatenate([[0.01 if _ == 0 else 0.0], asked[1:]]))
    assert mapper.step(reading(offset=(0.0, 0.0, -0.06))).action[0] == pytest.approx(0.0, abs=1e-9)
    back = mapper.step(reading(offset=(0.0, 0.0, -0.05))).action  # hand 1 cm back: arm 1 cm back, no dead zone
    assert back[0] == pytest.approx(-0.01)


def test_a_skipped_step_is_not_retried() -> None:
    mapper = make_mapper()
    mapper.step(reading())
    mapper.step(reading(offset=(0.0, 0.0, -0.015)))
    mapper.applied(np.array([0, 0, 0, 0, 0, 0, 1.0]))  # IK failed: the robot held
    assert np.allclose(mapper.step(reading(offset=(0.0, 0.0, -0.015))).action[:6], 0.0)
    assert mapper.step(reading(offset=(0.0, 0.0, -0.02))).action[0] == pytest.approx(0.005)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"base_from_headset": ((1, 0, 0), (0, 1, 0), (0, 0, 2))}, "rotation matrix"),
        ({"base_from_headset": ((-1, 0, 0), (0, 1, 0), (0, 0, 1))}, "rotation matrix"),
        ({"position_gain": float("nan")}, "position_gain"),
        ({"max_step_translation": 0.0}, "max_step_translation"),
        ({"keep_button": "RG"}, "must all differ"),
        ({"controller": "x"}, "'r' or 'l'"),
    ],
)
def test_bad_mapping_config_is_rejected(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        MappingConfig(**overrides)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-0.08, 0.08), min_size=3, max_size=3),
    st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=3),
    st.floats(0.5, 2.0),
)
def test_robot_converges_to_origin_plus_rotated_scaled_hand_motion(offset, rotvec, gain) -> None:
    config = MappingConfig(position_gain=gain)
    mapper = ControllerMapper(config, robot_max_translation=0.05, robot_max_rotation=0.25)
    mapper.reset(HOME)
    mapper.step(reading())
    actions = np.array(drive(mapper, reading(offset=offset, rotvec=rotvec), steps=60))
    assert np.all(np.linalg.norm(actions[:, :3], axis=1) <= 0.02 + 1e-9)
    assert np.allclose(actions[:, :3].sum(axis=0), gain * config.rotation @ np.array(offset), atol=1e-6)
    orientation = np.eye(3)
    for action in actions:
        orientation = euler_to_matrix(action[3:6]) @ orientation
    expected = config.rotation @ from_rotvec(np.array(rotvec)) @ config.rotation.T
    assert np.allclose(orientation, expected, atol=1e-6)


def observation(gripper: float = 1.0) -> Observation:
    return Observation(images={}, state=np.array([*HOME[:6], gripper], dtype=np.float32), timestamps={})


def test_keyboard_steps_toggles_and_events() -> None:
    spec = ActionSpec(max_translation=0.05, max_rotation=0.25)
    device = KeyboardTeleop(KeyboardConfig(step_translation=0.01, step_rotation=0.05), spec)
    device.begin_episode(observation())
    idle = device.command(observation())
    assert not idle.engaged and np.allclose(idle.action, [0, 0, 0, 0, 0, 0, 1])
    move = device.command(observation(), ["i", "i", "l", "y"])
    assert move.engaged and move.action[:6] == pytest.approx([0.02, -0.01, 0, 0, 0, 0.05])
    toggle = device.command(observation(), ["c"])
    assert toggle.action[6] == 0.0
    device.applied(toggle.action)
    assert device.command(observation(), []).action[6] == 0.0  # stays closed
    assert device.command(observation(), ["1"]).event is TeleopEvent.KEEP
    assert device.command(observation(), ["3"]).event is TeleopEvent.RERECORD
    many = device.command(observation(), ["i"] * 20)
    assert np.linalg.norm(many.action[:3]) == pytest.approx(0.05)


def test_keyboard_rejects_keys_bound_twice() -> None:
    with pytest.raises(ConfigError, match="both motion and episode"):
        KeyboardTeleop(KeyboardConfig(gripper_toggle="1"), ActionSpec(0.05, 0.25))
