"""Parser for the Oculus Quest teleop app's logcat protocol (the oculus_reader APK).

The headset app logs one line per frame under the tag `wE9ryARX`; `adb logcat` prefixes it with a
date, pid, tid and priority. The payload after `wE9ryARX: ` is

    r:<16 floats> |l:<16 floats> &R,A,RTr,RG,rightJS x y,rightTrig v,rightGrip v,L,X,...

poses (4x4 row-major, only tracked sides) joined by `|`, then `&`, then comma-separated buttons: a bare
name means pressed, `R`/`L` mark which controllers report, `name v1 [v2]` carries analog values.

A logcat stream over USB is lossy in practice (lines cut at buffer boundaries, interleaved writes,
stray bytes), so the parser never raises on bad input: `LogcatParser.feed` returns None for foreign
lines and for malformed ones, which it counts along with the reason of the last one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

APP_LOG_TAG = "wE9ryARX"
SIDE_MARKERS = {"R": "r", "L": "l"}
# Buttons and analog channels per controller, in the order the app writes them.
SIDE_BUTTONS = {"r": ("A", "B", "RTr", "RG", "RThU", "RJ"), "l": ("X", "Y", "LTr", "LG", "LThU", "LJ")}
ANALOG_NAMES = {"r": ("rightJS", "rightTrig", "rightGrip"), "l": ("leftJS", "leftTrig", "leftGrip")}
_BUTTON_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
# A pose is a rigid transform: orthonormal rotation, bottom row (0, 0, 0, 1).
_ROTATION_TOLERANCE = 1e-2
_BOTTOM_ROW_TOLERANCE = 1e-3
# Positions farther than this from the tracking origin are not a controller in a room.
_MAX_POSITION_M = 100.0


class MalformedLine(ValueError):
    """A tagged logcat line whose payload does not follow the protocol."""


@dataclass(frozen=True)
class ControllerReading:
    """One frame of the headset app: controller poses (headset frame) and buttons."""

    poses: Mapping[str, np.ndarray]  # "r" / "l" -> (4, 4) float64 transform
    pressed: frozenset[str]  # bare button names: A, B, X, Y, RTr, RG, RJ, RThU, LTr, ...
    analog: Mapping[str, tuple[float, ...]] = field(default_factory=dict)  # rightTrig -> (v,), rightJS -> (x, y)
    sides: frozenset[str] = frozenset()  # "r" / "l" for each controller whose buttons were reported

    def is_pressed(self, name: str) -> bool:
        return name in self.pressed

    def value(self, name: str, default: float = 0.0) -> float:
        """First analog value of `name` (e.g. rightTrig), or `default` when absent."""
        values = self.analog.get(name)
        return float(values[0]) if values else default


def extract_payload(line: str, tag: str = APP_LOG_TAG) -> str | None:
    """The protocol payload of a logcat line, or None when the line is not from the app."""
    marker = line.find(tag)
    if marker < 0:
        return None
    rest = line[marker + len(tag) :]
    if not rest.startswith(":"):
        return None
    return rest[1:].strip()


def _parse_pose(text: str) -> np.ndarray:
    tokens = text.split()
    if len(tokens) != 16:
        raise MalformedLine(f"pose has {len(tokens)} values, expected 16")
    try:
        values = [float(token) for token in tokens]
    except ValueError as error:
        raise MalformedLine(f"pose value is not a number ({error})") from None
    if not all(math.isfinite(v) for v in values):
        raise MalformedLine("pose contains NaN or inf")
    pose = np.array(values, dtype=np.float64).reshape(4, 4)
    if np.abs(pose[3] - (0.0, 0.0, 0.0, 1.0)).max() > _BOTTOM_ROW_TOLERANCE:
        raise MalformedLine("pose bottom row is not 0 0 0 1")
    rotation = pose[:3, :3]
    if np.abs(rotation @ rotation.T - np.eye(3)).max() > _ROTATION_TOLERANCE or np.linalg.det(rotation) < 0:
        raise MalformedLine("pose rotation is not a rotation matrix")
    if np.abs(pose[:3, 3]).max() > _MAX_POSITION_M:
        raise MalformedLine("pose position is implausibly far from the tracking origin")
    return pose


def _parse_poses(text: str) -> dict[str, np.ndarray]:
    poses: dict[str, np.ndarray] = {}
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        side, sep, values = part.partition(":")
        side = side.strip()
        if not sep or side not in ("r", "l"):
            raise MalformedLine(f"pose part {part[:20]!r} does not start with 'r:' or 'l:'")
        if side in poses:
            raise MalformedLine(f"pose for side {side!r} appears twice")
        poses[side] = _parse_pose(values)
    return poses


def _parse_buttons(text: str) -> tuple[frozenset[str], dict[str, tuple[float, ...]], frozenset[str]]:
    pressed: set[str] = set()
    analog: dict[str, tuple[float, ...]] = {}
    sides: set[str] = set()
    for token in text.split(","):
        words = token.split()
        if not words:
            continue
        name = words[0]
        if not _BUTTON_NAME.match(name):
            raise MalformedLine(f"button token {token[:20]!r} is not a button name")
        if len(words) == 1:
            if name in SIDE_MARKERS:
                sides.add(SIDE_MARKERS[name])
            else:
                pressed.add(name)
            continue
        try:
            values = tuple(float(word) for word in words[1:])
        except ValueError:
            raise MalformedLine(f"analog value of {name!r} is not a number") from None
        if not all(math.isfinite(v) for v in values):
            raise MalformedLine(f"analog value of {name!r} is NaN or inf")
        analog[name] = values
    return frozenset(pressed), analog, frozenset(sides)


def parse_payload(payload: str) -> ControllerReading:
    """Parse the text after the tag; raises MalformedLine on anything off-protocol."""
    if payload.count("&") != 1:
        raise MalformedLine("payload needs exactly one '&' between poses and buttons")
    poses_text, buttons_text = payload.split("&")
    poses = _parse_poses(poses_text)
    pressed, analog, sides = _parse_buttons(buttons_text)
    return ControllerReading(poses=poses, pressed=pressed, analog=analog, sides=sides)


def format_payload(reading: ControllerReading) -> str:
    """The payload the headset app would log for `reading` (used by the fake headset and tests)."""
    pose_parts = []
    for side in ("r", "l"):
        pose = reading.poses.get(side)
        if pose is not None:
            pose_parts.append(f"{side}:" + " ".join(f"{v:.6f}" for v in np.asarray(pose).reshape(-1)) + " ")
    buttons: list[str] = []
    for side, marker in (("r", "R"), ("l", "L")):
        if side not in reading.sides:
            continue
        buttons.append(marker)
        buttons.extend(name for name in SIDE_BUTTONS[side] if name in reading.pressed)
        for name in ANALOG_NAMES[side]:
            if name in reading.analog:
                buttons.append(" ".join([name, *(f"{v:.6f}" for v in reading.analog[name])]))
    return "|".join(pose_parts) + "&" + ",".join(buttons)


@dataclass
class ParserStats:
    """What the parser has seen: every line is exactly one of sample / malformed / foreign."""

    lines: int = 0
    samples: int = 0
    malformed: int = 0
    foreign: int = 0
    last_error: str = ""


class LogcatParser:
    """Turns logcat lines into readings; counts and skips anything malformed, never raises."""

    def __init__(self, tag: str = APP_LOG_TAG) -> None:
        self.tag = tag
        self.stats = ParserStats()

    def feed(self, line: str) -> ControllerReading | None:
        self.stats.lines += 1
        payload = extract_payload(line, self.tag)
        if payload is None:
            self.stats.foreign += 1
            return None
        try:
            reading = parse_payload(payload)
        except MalformedLine as error:
            self.stats.malformed += 1
            self.stats.last_error = str(error)
            return None
        self.stats.samples += 1
        return reading
