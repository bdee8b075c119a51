"""Factories for every backend the contract suite runs against (imported by the contract tests)."""

from __future__ import annotations

from collections.abc import Callable

from robots.mock import MockRobot
from robots.remote import RemoteRobot
from robots.robot import Robot
from robots.server import RobotServer
from robots.sim import SimRobot


class ServedMock(RemoteRobot):
    """remote -> mock: a RemoteRobot whose server (and mock arm) live exactly as long as its connection."""

    def __init__(self) -> None:
        self.arm = MockRobot(control_mode="rate", control_hz=50.0, cameras={"cam0": (32, 32)})
        self.arm.connect()
        self.server = RobotServer(self.arm, port=0, token="contract").start()
        super().__init__(self.server.rpc.address, token="contract", timeout_s=5.0)

    def disconnect(self) -> None:
        super().disconnect()
        self.server.close()
        self.arm.disconnect()


def backend_factories() -> dict[str, Callable[[], Robot]]:
    return {
        "remote-mock": ServedMock,
        "mock-rate": lambda: MockRobot(control_mode="rate", control_hz=50.0),
        "mock-blocking": lambda: MockRobot(control_mode="blocking", control_hz=5.0,
                                           cameras={"cam0": (48, 64), "wrist": (32, 32)}),
        "sim-widowx": lambda: SimRobot(profile="widowx", cameras={"cam0": (32, 32)}),
        "sim-franka": lambda: SimRobot(profile="franka", cameras={"cam0": (32, 48), "overhead": (32, 32)}),
    }
