"""Hydra robot configs build robots; bad configs are one-line ConfigErrors."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_module

from remix.common.errors import ConfigError
from robots.mock import MockRobot
from robots.robot import ControlMode, make_robot


def compose_robot(name: str, overrides: list[str] | None = None):
    with initialize_config_module(config_module="remix.configs", version_base=None):
        return compose(config_name=f"robot/{name}", overrides=overrides or []).robot


def test_mock_config_builds_a_mock_robot() -> None:
    robot = make_robot(compose_robot("mock", ["robot.control_mode=blocking"]))
    assert isinstance(robot, MockRobot) and robot.control_mode is ControlMode.BLOCKING
    assert robot.observation_spec.cameras == {"cam0": (64, 64)}


def test_unknown_key_is_a_config_error() -> None:
    cfg = dict(compose_robot("mock"))
    cfg["speed_of_light"] = 3
    with pytest.raises(ConfigError, match="speed_of_light"):
        make_robot(cfg)


def test_missing_target_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="_target_"):
        make_robot({"name": "x"})


def test_config_errors_from_the_backend_pass_through() -> None:
    with pytest.raises(ConfigError, match="workspace is empty"):
        make_robot({"_target_": "robots.mock.MockRobot", "workspace_low": [1, 1, 1], "workspace_high": [0, 0, 0]})


@pytest.mark.parametrize("name", ["mock", "sim", "widowx", "franka", "remote"])
def test_every_robot_config_builds_without_hardware(name: str) -> None:
    robot = make_robot(compose_robot(name))
    assert not robot.connected, "building a robot never touches hardware"
    if name != "remote":
        assert robot.action_spec.shape == (7,) and robot.observation_spec.cameras


@pytest.mark.parametrize("name", ["mock", "sim", "widowx", "franka"])
def test_camera_shapes_are_set_the_same_way_for_every_robot(name: str) -> None:
    """`robot.cameras.cam0=[H,W]` works whichever robot is chosen (hardware: the device stays in camera_devices)."""
    robot = make_robot(compose_robot(name, ["robot.cameras.cam0=[24,32]"]))  # builds, touches no device
    assert robot.observation_spec.cameras["cam0"] == (24, 32)


@pytest.mark.parametrize("name", ["widowx", "franka"])
def test_old_height_width_camera_config_is_a_one_line_redirect(name: str) -> None:
    cfg = dict(compose_robot(name))
    cfg["cameras"] = {"cam0": {"_target_": "robots.realsense.RealSenseCamera", "serial": "1", "height": 64, "width": 64}}
    with pytest.raises(ConfigError, match=r"write cameras: \{cam0: \[64, 64\]\}"):
        make_robot(cfg)
