"""The remote robot server and client: forwarding, faults, stop channel, token, vanished clients, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq

from remix.common.errors import HardwareError, RemixError
from remix.common.rpc import RpcClient, RpcError, pack
from robots.mock import MockRobot
from robots.remote import RemoteRobot
from robots.robot import ControlMode, RobotFault
from robots.server import RobotServer
from robots.sim import SimRobot
from robots.sim_interface import SimulatedRobot


def serve(robot, token: str | None = "tok") -> RobotServer:
    robot.connect()
    return RobotServer(robot, port=0, token=token).start()


def test_remote_mirrors_specs_and_safety_counters() -> None:
    arm = MockRobot(control_mode="blocking", control_hz=5.0, cameras={"cam0": (24, 32)})
    with serve(arm) as server, RemoteRobot(server.rpc.address, token="tok") as robot:
        assert robot.control_mode is ControlMode.BLOCKING and robot.control_hz == 5.0
        assert robot.observation_spec.cameras == {"cam0": (24, 32)}
        assert robot.action_spec.max_translation == arm.action_spec.max_translation
        robot.reset()
        robot.send_action([np.nan] * 7)
        assert robot.events.rejected_nonfinite == 1 == arm.events.rejected_nonfinite
        assert not isinstance(robot, SimulatedRobot), "mock has no expert, so the remote offers none"
    arm.disconnect()


def test_robot_fault_crosses_the_network_with_its_kind() -> None:
    arm = MockRobot(faults={"reflex": [1]})
    with serve(arm) as server, RemoteRobot(server.rpc.address, token="tok") as robot:
        robot.reset()
        with pytest.raises(RobotFault, match="recovered") as info:
            robot.send_action([0.01, 0, 0, 0, 0, 0, 1])
        assert info.value.kind == "arm"
        assert robot.send_action([0.01, 0, 0, 0, 0, 0, 1])[0] == pytest.approx(0.01)
    arm.disconnect()


def test_stop_reaches_the_arm_during_a_blocking_move() -> None:
    arm = MockRobot(control_mode="blocking", moving_time_s=0.5)
    with serve(arm) as server, RemoteRobot(server.rpc.address, token="tok") as robot:
        robot.reset()
        mover = threading.Thread(target=robot.send_action, args=([0.01, 0, 0, 0, 0, 0, 1],))
        mover.start()
        time.sleep(0.1)
        started = time.monotonic()
        robot.stop()
        assert time.monotonic() - started < 0.3, "stop is not queued behind the move"
        assert arm.stopped
        mover.join()
        np.testing.assert_array_equal(robot.send_action([0.01, 0, 0, 0, 0, 0, 1])[:6], 0)
        robot.reset()
        assert not arm.stopped
    arm.disconnect()


def test_server_survives_a_client_vanishing_mid_step() -> None:
    arm = MockRobot(control_mode="blocking", moving_time_s=0.2)
    with serve(arm) as server:
        socket = zmq.Context.instance().socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(server.rpc.address)
        socket.send(pack({"method": "send_action", "args": [np.array([0.01, 0, 0, 0, 0, 0, 1.0])], "kwargs": {},
                          "token": "tok"}))
        time.sleep(0.05)
        socket.close()
        with RemoteRobot(server.rpc.address, token="tok") as robot:
            assert robot.reset().state.shape == (7,)
            assert robot.send_action([0.01, 0, 0, 0, 0, 0, 1])[0] == pytest.approx(0.01)
    arm.disconnect()


def test_sim_extras_are_forwarded_and_rendered_on_the_server_thread() -> None:
    arm = SimRobot(cameras={"cam0": (32, 32)})
    with serve(arm) as server:
        remote = RemoteRobot(server.rpc.address, token="tok")
        assert not isinstance(remote, SimulatedRobot), "before connecting, the client cannot know"
        with remote as robot:
            assert isinstance(robot, SimulatedRobot) and robot.tasks == arm.tasks
            robot.set_task("lift_red")
            robot.reset(seed=0)
            for _ in range(30):
                robot.send_action(robot.expert_action())
                if robot.check_success():
                    break
            assert robot.check_success() is True
            assert robot.get_observation().images["cam0"].std() > 5, "rendered by a GL context of the server thread"
        assert not isinstance(remote, SimulatedRobot), "disconnected: the sim members go"
    arm.disconnect()


def test_wrong_token_and_missing_server_are_clear_errors() -> None:
    arm = MockRobot()
    with serve(arm) as server:
        with pytest.raises(RpcError, match="token rejected"):
            RemoteRobot(server.rpc.address, token="wrong").connect()
    arm.disconnect()
    with pytest.raises(HardwareError, match="remix-robot-server"):
        RemoteRobot("tcp://127.0.0.1:1", timeout_s=0.2).connect()
    with pytest.raises(RemixError, match="not connected"):
        RemoteRobot().get_observation()


def test_disconnect_releases_the_arm() -> None:
    arm = MockRobot()
    with serve(arm) as server:
        with RemoteRobot(server.rpc.address, token="tok") as robot:
            robot.reset()
        assert arm.stopped, "a leaving client leaves the arm held"
    arm.disconnect()


def test_robot_server_cli_serves_until_interrupted(tmp_path) -> None:
    port = 5800 + os.getpid() % 1000
    env = {**os.environ, "REMIX_ROBOT_TOKEN": "clitoken"}
    proc = subprocess.Popen([sys.executable, "-c", "from robots.server import main; main()", "robot=mock", f"port={port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        client = RpcClient(f"tcp://127.0.0.1:{port}", token="clitoken")
        assert "send_action" in client.wait_ready(timeout_s=30.0)
        client.close()
        with RemoteRobot(f"tcp://127.0.0.1:{port}", token="clitoken") as robot:
            assert robot.reset().images["cam0"].shape == (64, 64, 3)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert "serving mock" in out


def test_robot_server_cli_rejects_remote_and_unknown_keys() -> None:
    run = [sys.executable, "-c", "from robots.server import main; main()"]
    result = subprocess.run([*run, "robot=remote"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "error: remix-robot-server serves a local backend" in result.stderr
    result = subprocess.run([*run, "colour=red"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "colour" in result.stderr
    result = subprocess.run([*run, "port=abc"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and result.stderr.startswith("error: port=abc is not")  # typed config (issue 10)


def test_a_timed_out_action_does_not_run_after_stop_when_a_frozen_server_resumes() -> None:
    """The server freezes (SIGSTOP); the client's action and then its stop time out; the server resumes.
    Before: the old action ran (the arm moved 5 cm) and the stop was lost. Now: the arm ends stopped, unmoved."""
    port = 6800 + os.getpid() % 1000
    proc = subprocess.Popen([sys.executable, "-c", "from robots.server import main; main()", "robot=mock", f"port={port}",
                             "robot.control_mode=blocking", "token=tok"], stdout=subprocess.PIPE, text=True)
    try:
        assert "serving mock" in proc.stdout.readline()
        with RemoteRobot(f"tcp://127.0.0.1:{port}", token="tok") as robot:  # default deadlines (robot=remote)
            start = robot.reset().state[:3].copy()
            robot.send_action([0.0, 0, 0, 0, 0, 0, 1])  # the clocks are known before the freeze
            os.kill(proc.pid, signal.SIGSTOP)
            began = time.monotonic()
            with pytest.raises(HardwareError, match=r"did not answer 'send_action' for 0\.[56]\d s \(deadline 0.60 s"):
                robot.send_action([0.05, 0, 0, 0, 0, 0, 1])
            noticed = time.monotonic() - began
            assert noticed < 0.1 + 0.5 + 0.4, f"noticed after {noticed:.2f} s (was ~25 s in remix-eval)"
            began = time.monotonic()
            with pytest.raises(HardwareError, match="stop channel"):
                robot.stop()  # the stop channel times out too; the main channel just did, so it is not tried again
            assert time.monotonic() - began < 1.0
            began = time.monotonic()  # an observation may wait for camera retries (3 s on the mock), not for a dead server
            with pytest.raises(HardwareError, match="no longer answers at all"):
                robot.get_observation()
            assert time.monotonic() - began < 0.6 + 0.5 + 0.4
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(1.0)  # the server works off its queue: the stale action and the stop
        with RemoteRobot(f"tcp://127.0.0.1:{port}", token="tok", timeout_s=5.0) as robot:
            np.testing.assert_allclose(robot.get_observation().state[:3], start, atol=1e-6)
            events = robot._call("events")["messages"]
            assert any("stop requested" in m for m in events), events
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_an_action_sent_before_a_stop_is_dropped_whatever_the_order_it_arrives_in() -> None:
    arm = MockRobot()
    with serve(arm) as server:
        with RemoteRobot(server.rpc.address, token="tok") as robot:
            robot.reset()
            handler = server.send_action
            late_action = {}

            def delayed(action):  # the action is held up in the server while the stop overtakes it
                if not late_action:
                    late_action["sent"] = True
                    robot.stop()  # the stop is sent after the action, on the stop channel, and handled first
                return handler(action)

            server.rpc.handlers["send_action"] = delayed
            with pytest.raises(RemixError, match="sent before a stop"):
                robot.send_action([0.05, 0, 0, 0, 0, 0, 1])
            assert arm.stopped and server.dropped_actions == 1
    arm.disconnect()
