"""The Franka driver against franky-sim: the real franky + libfranka client on loopback, no fakes for the arm.

One simulated FR3 for the module. The Python simulator runs slower than real time on a loaded machine and
libfranka follows its clock, so the 10 Hz loop here is paced on simulated time (`sleep_sim`); the
watchdog (wall clock) is given a wide margin for the same reason, except in the watchdog test.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from sdk_fakes import FakeRobotiqGripper

from robots.robot import RobotFault

pytestmark = pytest.mark.slow  # ~5 s of simulated FR3 time; the Python simulator runs at ~0.3x real time here

franky = pytest.importorskip("franky")
pytest.importorskip("franky_sim")

from robots.franky_sim_server import FrankySimServer  # noqa: E402


@pytest.fixture(scope="module")
def sim():
    with FrankySimServer() as (server, host):
        yield server, host


def franka(host: str, **kwargs):
    from robots.franka import FrankaRobot

    defaults = dict(fci_host=host, realtime=False, load={"mass": 0.925, "center_of_mass": [0, 0, 0.058]},
                    watchdog_periods=50.0)
    defaults.update(kwargs)
    return FrankaRobot(**defaults)


def wait_until(server, predicate, sim_s: float = 1.0) -> bool:
    for _ in range(int(sim_s / 0.05)):
        if predicate():
            return True
        server.sleep_sim(0.05)
    return predicate()


def test_connect_reset_10hz_steps_stop_resume_and_reset(sim) -> None:
    server, host = sim
    with franka(host) as robot:
        obs = robot.reset()
        np.testing.assert_allclose(obs.state[:3], robot.home.position, atol=2e-3)
        np.testing.assert_allclose(obs.state[3:6], 0.0, atol=1e-2)
        start = obs.state[:3].copy()
        for _ in range(10):  # 1 s of +2 cm steps in x at 10 Hz
            robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
            server.sleep_sim(0.1)
        moved = robot.get_observation().state[0] - start[0]
        # before the dynamics fix (factor applied twice) the arm moved ~9 mm here
        assert moved > 0.15, f"the arm lags far behind 10 Hz commands: {moved * 1000:.1f} mm in 1 s"
        robot.stop()  # operator stop: Robot.stop() leaves "Move command preempted" for the next move
        robot.resume()
        before = robot.get_observation().state[1]
        robot.send_action([0, 0.02, 0, 0, 0, 0, 1])
        assert wait_until(server, lambda: robot.get_observation().state[1] > before + 0.015)
        robot.stop()  # end of trial, then the next trial's reset
        obs = robot.reset()
        np.testing.assert_allclose(obs.state[:3], robot.home.position, atol=2e-3)
        assert robot.events.faults == 0, robot.events.messages


def test_watchdog_stop_then_next_action(sim) -> None:
    server, host = sim
    with franka(host, watchdog_periods=2.0) as robot:
        robot.reset()
        robot.send_action([0, 0, -0.02, 0, 0, 0, 1])
        deadline = time.monotonic() + 2.0
        while robot.events.watchdog_trips == 0 and time.monotonic() < deadline:
            time.sleep(0.02)  # no action for 2 periods: the watchdog stops the arm
        assert robot.events.watchdog_trips == 1
        before = robot.get_observation().state[2]
        for _ in range(30):  # a live loop again; franky would re-raise "Move command preempted" at its first move
            robot.send_action([0, 0, -0.005, 0, 0, 0, 1])
            time.sleep(0.05)
            if robot.get_observation().state[2] < before - 0.002:
                break
        assert robot.get_observation().state[2] < before - 0.002
        assert robot.events.faults == 0, robot.events.messages


def test_reflex_is_recovered_and_reported(sim) -> None:
    server, host = sim
    with franka(host) as robot:
        robot.reset()
        robot.send_action([0.02, 0, 0, 0, 0, 0, 1])
        assert server.inject_reflex()
        with pytest.raises(RobotFault, match="reflex"):
            for _ in range(10):
                robot.send_action([0.0, 0, 0, 0, 0, 0, 1])
                server.sleep_sim(0.05)
        assert robot.recoveries == 1
        before = robot.get_observation().state[1]
        robot.send_action([0, 0.02, 0, 0, 0, 0, 1])  # recovered: the arm follows commands again
        assert wait_until(server, lambda: robot.get_observation().state[1] > before + 0.015)


def test_with_the_robotiq_fake_gripper(sim) -> None:
    server, host = sim
    gripper = {"com_port": "/dev/ttyUSB9", "poll_s": 0.005}
    with franka(host, gripper=gripper, gripper_factory=FakeRobotiqGripper) as robot:
        robot.send_action([0, 0, 0, 0, 0, 0, 0.0])
        assert wait_until(server, lambda: robot.get_observation().state[6] < 1e-6)
        robot.send_action([0, 0, 0, 0, 0, 0, 1.0])
        assert wait_until(server, lambda: robot.get_observation().state[6] > 1 - 1e-6)
        assert robot.gripper._gripper.strokes == 1 and robot.events.faults == 0
