"""Quest poses are head-relative in the oculus_reader app; pose_frame=left_controller cancels head motion."""

from __future__ import annotations

import numpy as np
import pytest

from robots.geometry import euler_to_matrix
from robots.robot import ActionSpec, Observation
from teleop.mapping import MappingConfig
from teleop.oculus import HeadsetSample
from teleop.protocol import ControllerReading
from teleop.quest import QuestTeleop, in_pose_frame


def transform(position, euler=(0.0, 0.0, 0.0)) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = euler_to_matrix(np.asarray(euler, dtype=float))
    matrix[:3, 3] = position
    return matrix


class StubReader:
    """What QuestTeleop needs of an OculusReader: the newest sample."""

    def __init__(self) -> None:
        self.reading: ControllerReading | None = None
        self.sequence = 0

    def take(self, now=None):
        self.sequence += 1
        return HeadsetSample(self.reading, 0.0, 0.0, self.sequence), frozenset()


def head_view(head: np.ndarray, right_world: np.ndarray, left_world: np.ndarray) -> ControllerReading:
    """What the app logs: each controller relative to the current head pose."""
    inverse = np.linalg.inv(head)
    return ControllerReading(poses={"r": inverse @ right_world, "l": inverse @ left_world}, pressed=frozenset({"RG"}))


@pytest.mark.parametrize("frame, moves", [("head", True), ("left_controller", False)])
def test_turning_the_head_moves_the_command_only_in_the_head_frame(frame: str, moves: bool) -> None:
    reader = StubReader()
    device = QuestTeleop(reader, MappingConfig(), ActionSpec(0.05, 0.25), pose_frame=frame)  # type: ignore[arg-type]
    device.begin_episode(Observation({}, np.array([0.3, 0, 0.15, 0, 0, 0, 1], np.float32), {}))
    right, left = transform([0.2, -0.3, -0.4]), transform([-0.2, -0.5, -0.3])  # hands still, in the room
    reader.reading = head_view(np.eye(4), right, left)
    device.command(Observation({}, np.zeros(7, np.float32), {}))  # dead-man pressed: origins recorded
    reader.reading = head_view(transform([0.05, 0.0, 0.0], (0.0, 0.3, 0.0)), right, left)  # the head turns
    action = device.command(Observation({}, np.zeros(7, np.float32), {})).action
    assert (np.abs(action[:6]).max() > 1e-3) == moves, action


def test_left_controller_frame_without_the_left_controller_holds_still() -> None:
    reading = ControllerReading(poses={"r": transform([0.1, 0, 0])}, pressed=frozenset({"RG"}))
    assert "r" not in in_pose_frame(reading, "left_controller").poses
    assert in_pose_frame(reading, "head") is reading
    with pytest.raises(ValueError, match="pose_frame"):
        QuestTeleop(StubReader(), MappingConfig(), ActionSpec(0.05, 0.25), pose_frame="world")  # type: ignore[arg-type]
