"""Quest teleop device: the ADB reader's newest controller reading through the controller mapping.

The oculus_reader app logs each controller pose relative to the *current head pose* (headPose^-1 *
handPose), so turning or moving the head moves the mapped command while the hand stays still. With
`pose_frame="left_controller"` the driving controller is taken relative to the other controller instead
(L^-1 R = (H^-1 L)^-1 (H^-1 R): the head pose cancels), which is head-motion free as long as the other
controller rests still (on the table or the lap). "head" keeps the app's frame (keep the head still).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import numpy as np

from robots.robot import ActionSpec, Observation
from teleop.device import DEFAULT_EVENT_KEYS, EventKeys, TeleopCommand, TeleopDevice
from teleop.mapping import ControllerMapper, MappingConfig
from teleop.oculus import OculusReader
from teleop.protocol import ControllerReading

PoseFrame = Literal["head", "left_controller"]


def in_pose_frame(reading: ControllerReading, frame: PoseFrame, controller: str = "r") -> ControllerReading:
    """The reading with the driving controller's pose in `frame`; without the reference controller tracked,
    the driving pose is dropped (the mapping then holds still, as with an untracked controller)."""
    if frame == "head":
        return reading
    reference = reading.poses.get("l" if controller == "r" else "r")
    poses = dict(reading.poses)
    if reference is None:
        poses.pop(controller, None)
    elif controller in poses:
        poses[controller] = np.linalg.inv(reference) @ poses[controller]
    return replace(reading, poses=poses)


class QuestTeleop(TeleopDevice):
    """Drive the robot with a Quest controller (grip = dead-man, trigger = gripper, A/B/stick = events)."""

    name = "oculus"

    def __init__(self, reader: OculusReader, mapping: MappingConfig, action_spec: ActionSpec,
                 event_keys: EventKeys = DEFAULT_EVENT_KEYS, first_sample_timeout_s: float = 10.0,
                 pose_frame: PoseFrame = "head") -> None:
        if pose_frame not in ("head", "left_controller"):
            raise ValueError(f"teleop pose_frame must be 'head' or 'left_controller', got {pose_frame!r}")
        if pose_frame == "left_controller" and mapping.controller != "r":
            raise ValueError("teleop pose_frame=left_controller needs the right controller to drive (controller: r)")
        self.reader = reader
        self.pose_frame: PoseFrame = pose_frame
        self._controller = mapping.controller
        self.mapper = ControllerMapper(mapping, action_spec.max_translation, action_spec.max_rotation)
        self.event_keys = event_keys
        self.first_sample_timeout_s = first_sample_timeout_s

    @property
    def keys(self) -> frozenset[str]:
        return self.event_keys.all

    def start(self) -> None:
        self.reader.start()
        try:
            self.reader.wait_for_sample(self.first_sample_timeout_s)
        except BaseException:
            self.reader.stop()
            raise

    def stop(self) -> None:
        self.reader.stop()

    def begin_episode(self, observation: Observation) -> None:
        self.mapper.reset(observation.state)

    def command(self, observation: Observation, keys: Sequence[str] = ()) -> TeleopCommand:
        sample, tapped = self.reader.take()
        reading = in_pose_frame(sample.reading, self.pose_frame, self._controller) if sample is not None else None
        command = self.mapper.step(reading, tapped)
        key_event = self.event_keys.event(keys)
        if command.event is None and key_event is not None:
            command = replace(command, event=key_event)
        return command

    def applied(self, action: np.ndarray) -> None:
        self.mapper.applied(action)
