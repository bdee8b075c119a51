"""Quest teleop device: the ADB reader's newest controller reading through the controller mapping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from robots.robot import ActionSpec, Observation
from teleop.device import DEFAULT_EVENT_KEYS, EventKeys, TeleopCommand, TeleopDevice
from teleop.mapping import ControllerMapper, MappingConfig
from teleop.oculus import OculusReader


class QuestTeleop(TeleopDevice):
    """Drive the robot with a Quest controller (grip = dead-man, trigger = gripper, A/B/stick = events)."""

    name = "oculus"

    def __init__(self, reader: OculusReader, mapping: MappingConfig, action_spec: ActionSpec,
                 event_keys: EventKeys = DEFAULT_EVENT_KEYS, first_sample_timeout_s: float = 10.0) -> None:
        self.reader = reader
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
        command = self.mapper.step(sample.reading if sample is not None else None, tapped)
        key_event = self.event_keys.event(keys)
        if command.event is None and key_event is not None:
            command = replace(command, event=key_event)
        return command

    def applied(self, action: np.ndarray) -> None:
        self.mapper.applied(action)
