"""The fakes and the drivers' calls checked against the real, installed SDK packages (names and parameters).

pybind11 modules (franky, pyrealsense2) carry their signatures in the docstrings ("name(self: T, a: int = 1)
-> R", one line per overload); pure-Python ones (pyrobotiqgripper, pure-python-adb) through inspect.
"""

from __future__ import annotations

import inspect
import re

import pytest
from sdk_fakes import FakeFrankaArm, FakeRealSense, FakeRobotiqGripper, FakeVideoCapture


def split_params(text: str) -> list[str]:
    """Top-level comma split of a parameter list (defaults may hold brackets)."""
    params, depth, current = [], 0, ""
    for char in text:
        depth += 1 if char in "([" else -1 if char in ")]" else 0
        if char == "," and depth == 0:
            params.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*params, current] if p.strip()]


def pybind_overloads(function) -> list[list[str]]:
    """Parameter names (without self) of every overload listed in a pybind11 docstring."""
    overloads = []
    for line in (function.__doc__ or "").splitlines():
        match = re.match(r"^(?:\d+\. )?\w+\((.*)\) ->", line.strip())
        if match:
            names = [p.split(":")[0].split("=")[0].strip() for p in split_params(match.group(1))]
            overloads.append([n for n in names if n != "self"])
    return overloads


def fake_params(function) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def test_franky_robot_fake_matches_franky() -> None:
    franky = pytest.importorskip("franky")
    for method in ("__init__", "move", "poll_motion", "join_motion", "recover_from_errors", "stop", "set_load", "set_ee"):
        real = pybind_overloads(getattr(franky.Robot, method))
        fake = fake_params(getattr(FakeFrankaArm, method))
        assert any(o[: len(fake)] == fake for o in real), f"{method}: fake {fake}, franky {real}"
    for prop in ("has_errors", "current_cartesian_state"):
        assert isinstance(getattr(franky.Robot, prop), property)
    # everything the driver names in franky exists
    for name in ("Robot", "RealtimeConfig", "RelativeDynamicsFactor", "Affine", "CartesianMotion", "ReferenceType",
                 "IncompatibleVersionException", "RealtimeException", "ControlException", "Exception"):
        assert hasattr(franky, name), name
    assert {franky.RealtimeConfig.Enforce, franky.RealtimeConfig.Ignore} and franky.ReferenceType.Absolute is not None


def test_realsense_fake_matches_pyrealsense2() -> None:
    rs = pytest.importorskip("pyrealsense2")
    fake = FakeRealSense(["1"])
    pairs = [(rs.config.enable_device, fake.config.enable_device), (rs.config.enable_stream, fake.config.enable_stream),
             (rs.pipeline.start, fake.pipeline.start), (rs.pipeline.wait_for_frames, fake.pipeline.wait_for_frames),
             (rs.pipeline.stop, fake.pipeline.stop)]
    for real, mock in pairs:
        assert fake_params(mock) in pybind_overloads(real), f"{real.__name__}: fake {fake_params(mock)}"
    assert isinstance(rs.context.devices, property)
    for enum, names in ((rs.stream, ["color"]), (rs.format, ["bgr8"]), (rs.camera_info, ["serial_number"]),
                        (rs.option, ["enable_auto_exposure", "exposure", "enable_auto_white_balance", "white_balance"])):
        for name in names:
            assert hasattr(enum, name), name
            assert hasattr(getattr(fake, enum.__name__), name), name
    for method in ("set_option",):
        assert ["option", "value"] in pybind_overloads(getattr(rs.sensor, method))
    for method in ("get_timestamp", "get_frame_number", "get_data"):
        assert hasattr(rs.frame, method)


def test_robotiq_fake_matches_pyrobotiqgripper() -> None:
    from pyrobotiqgripper import RobotiqGripper
    from pyrobotiqgripper.exceptions import GripperFaultError

    for method in ("__init__", "move", "position", "activate", "disconnect"):
        real = fake_params(getattr(RobotiqGripper, method))
        fake = fake_params(getattr(FakeRobotiqGripper, method))
        assert fake == real, method
    assert "code" in inspect.signature(GripperFaultError).parameters


def test_the_oculus_reader_calls_match_pure_python_adb() -> None:
    from ppadb.client import Client
    from ppadb.device import Device

    assert fake_params(Client.__init__) == ["host", "port"]
    assert fake_params(Client.devices) == ["state"]
    assert fake_params(Client.remote_connect) == ["host", "port"]
    assert fake_params(Device.is_installed) == ["package"]
    assert fake_params(Device.install)[:1] == ["path"] and "test" in fake_params(Device.install)
    assert fake_params(Device.shell) == ["cmd", "handler", "timeout"]


def test_opencv_fake_matches_videocapture() -> None:
    import cv2

    for method in ("isOpened", "set", "read", "release"):
        assert hasattr(cv2.VideoCapture, method) and hasattr(FakeVideoCapture, method), method
    assert "read(" in cv2.VideoCapture.read.__doc__ and "image" in cv2.VideoCapture.read.__doc__
