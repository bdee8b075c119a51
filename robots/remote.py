"""A Robot backend that forwards every call to a `remix-robot-server` (robots.server).

The safety layer and watchdog run on the server next to the arm; this client only checks the action's
shape, mirrors the server's safety counters (`events`) and sends `stop` over the server's separate stop
channel so it is not queued behind a blocking move. When the server's robot is simulated, the client
satisfies `robots.sim_interface.SimulatedRobot` too (tasks, set_task, expert_action are forwarded), so
`isinstance(remote, SimulatedRobot)` holds once connected.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from remix.common.errors import HardwareError, RemixError
from remix.common.rpc import RpcClient, RpcTimeout
from robots.cameras import CameraTimeout
from robots.robot import (
    ActionSpec,
    ControlMode,
    Observation,
    ObservationSpec,
    Robot,
    RobotFault,
    SafetyEvents,
)
from robots.safety import SafetyLimits
from robots.server import observation_from_wire
from robots.sim_interface import SIMULATED_MEMBERS

log = logging.getLogger("robots.remote")


class RemoteRobot(Robot):
    """Client of a robot server; specs and control mode come from the server on connect."""

    def __init__(self, address: str = "tcp://127.0.0.1:5557", token: str | None = None, timeout_s: float = 10.0,
                 stop_address: str | None = None, name: str | None = None) -> None:
        self.address = address
        self.token = token or None
        self.timeout_s = float(timeout_s)
        self.stop_address = stop_address
        self._name = name
        self.events = SafetyEvents()
        self._client: RpcClient | None = None
        self._stop_client: RpcClient | None = None
        self._info: dict[str, Any] | None = None
        self._stopped = False

    # ------------------------------------------------------------------------------------------ specs
    def _require_info(self) -> dict[str, Any]:
        if self._info is None:
            raise RemixError(f"remote robot {self.address} is not connected; use it as a context manager")
        return self._info

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name or (self._info["name"] if self._info else f"remote:{self.address}")

    @property
    def control_mode(self) -> ControlMode:  # type: ignore[override]
        return ControlMode(self._require_info()["control_mode"])

    @property
    def control_hz(self) -> float:  # type: ignore[override]
        return float(self._require_info()["control_hz"])

    @property
    def action_spec(self) -> ActionSpec:  # type: ignore[override]
        spec = self._require_info()["action_spec"]
        return ActionSpec(spec["max_translation"], spec["max_rotation"], tuple(spec["names"]))

    @property
    def observation_spec(self) -> ObservationSpec:  # type: ignore[override]
        spec = self._require_info()["observation_spec"]
        return ObservationSpec({k: tuple(v) for k, v in spec["cameras"].items()}, tuple(spec["state_names"]))

    @property
    def limits(self) -> SafetyLimits:  # type: ignore[override]
        values = self._require_info()["limits"]
        return SafetyLimits(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @property
    def connected(self) -> bool:
        return self._info is not None

    @property
    def stopped(self) -> bool:
        return self._stopped

    # ------------------------------------------------------------------------------------------- calls
    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self._client is None:
            raise RemixError(f"remote robot {self.address} is not connected; use it as a context manager")
        return self._client.call(method, *args, **kwargs)

    def connect(self) -> None:
        if self._info is not None:
            return
        errors = {"RobotFault": RobotFault, "CameraTimeout": CameraTimeout}
        client = RpcClient(self.address, token=self.token, timeout_s=self.timeout_s, error_types=errors)
        try:
            info = client.call("info", timeout_s=min(self.timeout_s, 5.0))
        except RpcTimeout:
            client.close()
            raise HardwareError(f"no robot server answers at {self.address}; start `remix-robot-server robot=...` on the "
                                "arm's host (and check host/port/token)") from None
        except Exception:
            client.close()
            raise
        self._client = client
        host = self.address.rsplit(":", 1)[0]
        self._stop_client = RpcClient(self.stop_address or f"{host}:{info['stop_port']}", token=self.token, timeout_s=2.0)
        self._info = info
        if info.get("simulated"):
            # instance attributes, so that isinstance(self, SimulatedRobot) holds only while connected to a sim
            self.__dict__.update(tasks=tuple(info["tasks"]), set_task=self._set_task, expert_action=self._expert_action)

    def _set_task(self, task: str) -> None:
        self._call("set_task", task)

    def _expert_action(self) -> np.ndarray:
        return np.asarray(self._call("expert_action"), dtype=np.float32)

    def disconnect(self) -> None:
        if self._client is None:
            return
        try:
            self._client.call("release", timeout_s=2.0)
        except RemixError as error:
            log.warning("remote robot release failed: %s", error)
        finally:
            self._client.close()
            if self._stop_client is not None:
                self._stop_client.close()
            for member in SIMULATED_MEMBERS:
                self.__dict__.pop(member, None)
            self._client = self._stop_client = self._info = None

    def reset(self, seed: int | None = None) -> Observation:
        obs = observation_from_wire(self._call("reset", seed=seed))
        self._stopped = False
        return obs

    def get_observation(self) -> Observation:
        return observation_from_wire(self._call("get_observation"))

    def send_action(self, action: np.ndarray) -> np.ndarray:
        raw = np.asarray(action, dtype=np.float64).reshape(-1)
        if raw.shape != (7,):
            raise ValueError(f"robot action must have 7 values (dx, dy, dz, droll, dpitch, dyaw, gripper), got shape {np.shape(action)}")
        reply = self._call("send_action", raw)
        for key, value in reply["events"].items():
            setattr(self.events, key, int(value))
        return np.asarray(reply["applied"], dtype=np.float32)

    def stop(self) -> None:
        self._stopped = True
        self.events.stops += 1
        if self._stop_client is None:
            return
        try:
            self._stop_client.call("stop")
        except RemixError as error:  # the stop channel failed: try the main one before giving up
            log.error("stop channel failed (%s); sending stop on the main channel", error)
            self._call("stop")

    def resume(self) -> None:
        self._call("resume")
        self._stopped = False

    def check_success(self) -> bool | None:
        return self._call("check_success")
