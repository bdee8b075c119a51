"""`remix-robot-server robot=...`: expose any robot backend over the network.

The arm's own host (ROS container, RT kernel) runs the server; policies run anywhere and use
`robot=remote` (robots.remote.RemoteRobot). The safety layer runs here, next to the arm, so a slow or
lost network can only make the arm hold (the rate-mode watchdog), never jump. Binds 127.0.0.1 unless
`host=` says otherwise; set a shared token (`token=` or the REMIX_ROBOT_TOKEN environment variable)
whenever it listens beyond loopback. A second socket (`stop_port`, default port + 1) carries only the
stop command, so an operator stop reaches the arm even while a blocking move is in flight.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig

from remix.common.cli import hydra_main
from remix.common.config import register
from remix.common.errors import ConfigError, RemixError
from remix.common.rpc import RpcServer, current_request
from robots.robot import Observation, Robot, make_robot
from robots.sim_interface import SimulatedRobot

log = logging.getLogger("robots.server")

def observation_to_wire(obs: Observation) -> dict[str, Any]:
    return {"images": obs.images, "state": obs.state, "timestamps": obs.timestamps}


def observation_from_wire(message: dict[str, Any]) -> Observation:
    return Observation(images=dict(message["images"]), state=np.asarray(message["state"], dtype=np.float32),
                       timestamps={k: float(v) for k, v in message["timestamps"].items()})


def observation_budget_s(robot: Robot) -> float:
    """How long `get_observation` may legitimately take here beyond a control period: camera reads that time out
    and are retried (a client that gave up sooner would see a silent server instead of the camera's RobotFault)."""
    if not robot.observation_spec.cameras:
        return 0.0
    timeout = float(getattr(robot, "camera_timeout_s", 0.0) or 0.0)
    return timeout * (int(getattr(robot, "camera_retries", 0) or 0) + 1)


def event_counters(robot: Robot) -> dict[str, int]:
    return {f.name: getattr(robot.events, f.name) for f in dataclasses.fields(robot.events) if f.name != "messages"}


class RobotServer:
    """Serves one connected robot: `info`, `reset`, `get_observation`, `send_action`, `stop`, ... over rpc."""

    def __init__(self, robot: Robot, host: str = "127.0.0.1", port: int = 5557, token: str | None = None,
                 stop_port: int | None = None) -> None:
        self.robot = robot
        handlers = {
            "info": self.info,
            "reset": lambda seed=None: observation_to_wire(robot.reset(seed=seed)),
            "get_observation": lambda: observation_to_wire(robot.get_observation()),
            "send_action": self.send_action,
            "stop": self.stop,
            "resume": robot.resume,
            "check_success": robot.check_success,
            "release": self.release,
            "events": lambda: {"counters": event_counters(robot), "messages": list(robot.events.messages)},
        }
        if isinstance(robot, SimulatedRobot):  # a simulator: its tasks and expert are served too
            handlers.update({"tasks": lambda: list(robot.tasks), "set_task": robot.set_task,
                             "expert_action": robot.expert_action})
        self._last_stop_ns = 0  # when (server clock) the client sent its latest stop
        self.dropped_actions = 0
        self.rpc = RpcServer(handlers, host=host, port=port, token=token)
        if stop_port is None:
            stop_port = 0 if port == 0 else port + 1
        try:
            self.stop_rpc = RpcServer({"stop": self.stop}, host=host, port=stop_port, token=token)
        except Exception:
            self.rpc.close()
            raise

    def info(self) -> dict[str, Any]:
        robot = self.robot
        return {
            "name": robot.name,
            "control_mode": robot.control_mode.value,
            "control_hz": robot.control_hz,
            "action_spec": {"max_translation": robot.action_spec.max_translation,
                            "max_rotation": robot.action_spec.max_rotation, "names": list(robot.action_spec.names)},
            "observation_spec": {"cameras": {k: list(v) for k, v in robot.observation_spec.cameras.items()},
                                 "state_names": list(robot.observation_spec.state_names)},
            "limits": dataclasses.asdict(robot.limits),
            "simulated": isinstance(robot, SimulatedRobot),
            "tasks": list(robot.tasks) if isinstance(robot, SimulatedRobot) else [],
            "stop_port": self.stop_rpc.port,
            "observation_budget_s": observation_budget_s(robot),
            "action_time_s": max(robot.period_s, float(getattr(robot, "moving_time_s", 0.0) or 0.0)),
        }

    def stop(self) -> None:
        """Stop always wins: an action the client sent before this stop is dropped, whenever it arrives."""
        request = current_request()
        if request is not None:
            self._last_stop_ns = max(self._last_stop_ns, request.sent_ns)
        self.robot.stop()

    def send_action(self, action: Any) -> dict[str, Any]:
        request = current_request()
        if request is not None and request.sent_ns <= self._last_stop_ns:
            self.dropped_actions += 1
            self.robot.events.note(f"{self.robot.name}: dropped an action sent before the operator's stop")
            raise RemixError("action dropped: it was sent before a stop; reset() or resume() first")
        applied = self.robot.send_action(np.asarray(action, dtype=np.float64))
        return {"applied": applied, "events": event_counters(self.robot)}

    def release(self) -> None:
        """A client is leaving: stop and hold (the next client's reset clears it)."""
        self.robot.stop()

    def start(self) -> RobotServer:
        self.rpc.start()
        self.stop_rpc.start()
        return self

    def close(self) -> None:
        self.stop_rpc.close()
        self.rpc.close()

    def __enter__(self) -> RobotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve_forever(self) -> None:
        self.stop_rpc.start()
        try:
            self.rpc.serve_forever()
        finally:
            self.close()


def _port(value: object, key: str) -> int:
    try:
        port = int(str(value))
    except ValueError:
        raise ConfigError(f"{key}={value!r} is not a port number; use an integer in 1-65535") from None
    if not 0 < port <= 65535:
        raise ConfigError(f"{key}={port} is out of range; use 1-65535")
    return port


@dataclass(frozen=True)
class RobotServerCommand:
    """remix-robot-server's settings (the robot itself is the `robot` config group)."""

    robot: Any = None  # robot=widowx|franka|sim|mock
    host: str = "127.0.0.1"  # loopback only by default; 0.0.0.0 to serve the network (then set a token)
    port: int = 5557
    stop_port: int | None = None  # None = port + 1 (a stop-only channel never queued behind a move)
    token: str | None = "${oc.env:REMIX_ROBOT_TOKEN,null}"  # shared token; or set REMIX_ROBOT_TOKEN


register("robot_server_schema", RobotServerCommand)


def run_server(cfg: DictConfig) -> None:
    if cfg.robot.get("_target_") == "robots.remote.RemoteRobot":
        raise ConfigError("remix-robot-server serves a local backend; choose robot=widowx|franka|mock|sim, not remote")
    port, stop_port = _port(cfg.port, "port"), None if cfg.stop_port is None else _port(cfg.stop_port, "stop_port")
    with make_robot(cfg.robot) as robot:
        server = RobotServer(robot, host=str(cfg.host), port=port, token=cfg.token, stop_port=stop_port)
        print(f"serving {robot.name} ({robot.control_mode.value}, {robot.control_hz:g} Hz) on {server.rpc.bind_address} "
              f"(stop channel port {server.stop_rpc.port}){'' if cfg.token else ', no token'}; Ctrl-C to stop", flush=True)
        server.serve_forever()


@hydra_main("robot_server")
def main(cfg: DictConfig) -> None:
    """remix-robot-server: serve a robot over the network so policies can run on another machine.

    Usage:
      remix-robot-server robot=widowx|franka|sim|mock [host=127.0.0.1] [port=5557] [token=SECRET]
    Binds 127.0.0.1 unless told otherwise; clients use robot=remote robot.address=tcp://HOST:PORT.
    The safety layer runs here, next to the arm. Stops on Ctrl-C.
    """
    run_server(cfg)
