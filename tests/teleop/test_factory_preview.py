"""Teleop config validation and the camera preview thread."""

from __future__ import annotations

import time

import numpy as np
import pytest

from remix.common.errors import ConfigError
from robots.mock import MockRobot
from teleop.factory import make_teleop
from teleop.keyboard import KeyboardTeleop
from teleop.preview import CameraPreview
from teleop.quest import QuestTeleop


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"_target_": "teleop.factory.make_spacemouse"}, "unknown teleop _target_ 'teleop.factory.make_spacemouse'"),
        ({"kind": "keyboard"}, "'kind: keyboard' is now '_target_: teleop.factory.make_keyboard'"),
        ({"_target_": "teleop.factory.make_keyboard", "step_size": 0.1}, "unknown teleop \\(keyboard\\) keys \\['step_size'\\]"),
        ({"_target_": "teleop.factory.make_keyboard", "keys": {"save": "1"}}, "unknown teleop.keys keys \\['save'\\]"),
        ({"_target_": "teleop.factory.make_keyboard", "step_translation": -0.1}, "must be positive"),
        ({"_target_": "teleop.factory.make_oculus", "mapping": {"gain": 2}}, "unknown teleop.mapping keys \\['gain'\\]"),
        ({"_target_": "teleop.factory.make_oculus", "mapping": {"base_from_headset": [[1, 0, 0], [0, 1, 0], [0, 0, -1]]}}, "rotation matrix"),
        ({"_target_": "teleop.factory.make_scripted_oculus", "script": []}, "teleop.script is empty"),
        ({"_target_": "teleop.factory.make_scripted_oculus", "script": [[{"move": [0, 0, 1]}]]}, "needs a duration"),
        ({"_target_": "teleop.factory.make_scripted_oculus", "script": [[{"duration": 1, "jump": 1}]]}, "unknown headset script keys"),
    ],
)
def test_bad_teleop_configs_name_the_key(cfg, message) -> None:
    with MockRobot() as robot:
        with pytest.raises(ConfigError, match=message):
            make_teleop(cfg, robot)


def test_devices_are_built_from_config() -> None:
    with MockRobot(max_translation=0.03) as robot:
        keyboard = make_teleop({"_target_": "teleop.factory.make_keyboard", "keys": {"keep": "p"}, "gripper_toggle": "v",
                                "step_translation": 0.005}, robot)
        assert isinstance(keyboard.device, KeyboardTeleop) and keyboard.device.event_keys.keep == "p"
        quest = make_teleop({"_target_": "teleop.factory.make_oculus", "adb_port": 1, "mapping": {"position_gain": 1.5}}, robot)
        assert isinstance(quest.device, QuestTeleop)
        assert quest.device.mapper.config.position_gain == 1.5
        assert quest.device.mapper.max_translation == 0.02  # min(teleop limit, robot limit 0.03)
        assert quest.device.reader.settings.adb_port == 1


def test_stop_keys_may_not_double_as_teleop_keys(tmp_path) -> None:
    from remix.common.operator_input import ScriptedInput
    from teleop.collect import CollectSettings, DemoCollector, open_demo_store

    with MockRobot() as robot:
        device = make_teleop({"_target_": "teleop.factory.make_keyboard"}, robot).device
        store = open_demo_store(tmp_path / "k.zarr", robot)
        with pytest.raises(ConfigError, match="\\['i'\\] are both stop keys and teleop keys"):
            DemoCollector(robot, device, store, ScriptedInput(), CollectSettings(task="t", stop_keys=("i", "s")))


def test_preview_draws_latest_frames_off_thread_and_survives_a_missing_display() -> None:
    shown: list[tuple[str, tuple[int, ...]]] = []
    preview = CameraPreview(display=lambda name, image: shown.append((name, image.shape)), rate_hz=100.0, scale=2)
    frame = np.zeros((8, 8, 3), dtype=np.uint8)
    for _ in range(5):
        preview.show({"cam0": frame})
        time.sleep(0.03)
    preview.close()
    assert preview.frames_shown >= 2 and shown[0] == ("remix-collect cam0", (16, 16, 3))

    def no_display(name: str, image: np.ndarray) -> None:
        raise RuntimeError("cannot open display")

    broken = CameraPreview(display=no_display, rate_hz=100.0)
    broken.show({"cam0": frame})
    deadline = time.monotonic() + 2
    while broken.failed is None and time.monotonic() < deadline:
        time.sleep(0.01)
    broken.show({"cam0": frame})  # the loop keeps calling show; nothing breaks
    broken.close()
    assert broken.failed == "cannot open display"
