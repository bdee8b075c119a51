"""A Robot backend that forwards every call to a `remix-robot-server` (robots.server).

The safety layer and watchdog run on the server next to the arm; this client only checks the action's
shape, mirrors the server's safety counters (`events`) and sends `stop` over the server's separate stop
channel so it is not queued behind a blocking move.

Per-step calls (`send_action`, `get_observation`, `check_success`, `stop`) carry a deadline of one control
period plus `step_margin_s`, so a frozen or unreachable server is noticed within about one period, not
after the long `timeout_s` meant for resets. An observation may take longer (the server's camera retry
budget) as long as the server is alive: past one step deadline the client pings the stop channel and
gives up when that is silent too. The server drops a request older than its deadline, so a timed-out
action never runs late, and runs a late stop whatever its age (stop wins).

When the server's robot is simulated, the client satisfies `robots.sim_interface.SimulatedRobot` too
(tasks, set_task, expert_action are forwarded), so `isinstance(remote, SimulatedRobot)` holds once connected.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from remix.common.errors import ConfigError, HardwareError, RemixError
from remix.common.rpc import RpcClient, RpcServerGone, RpcTimeout
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
                 stop_address: str | None = None, name: str | None = None, step_margin_s: float = 0.5,
                 step_timeout_s: float | None = None) -> None:
        self.address = address
        self.token = token or None
        self.timeout_s = float(timeout_s)
        self.step_margin_s = float(step_margin_s)
        self._step_timeout_s = None if step_timeout_s is None else float(step_timeout_s)
        for key, value in (("timeout_s", self.timeout_s), ("step_margin_s", self.step_margin_s),
                           ("step_timeout_s", self._step_timeout_s)):
            if value is not None and not (value > 0 if key != "step_margin_s" else value >= 0):
                raise ConfigError(f"robot.{key}={value} must be {'>= 0' if key == 'step_margin_s' else 'positive'} "
                                  "(seconds)")
        self._unresponsive = False  # the main channel just missed a step deadline
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
    def step_timeout_s(self) -> float:
        """Deadline of one per-step call: step_timeout_s if given, else one control period + step_margin_s."""
        if self._step_timeout_s is not None:
            return self._step_timeout_s
        return self.period_s + self.step_margin_s

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

    def _step_call(self, method: str, *args: Any, extra_s: float = 0.0) -> Any:
        """A per-step call under the step deadline (+ `extra_s` the server says it may need); a silent server
        becomes a one-line HardwareError."""
        if self._client is None:
            raise RemixError(f"remote robot {self.address} is not connected; use it as a context manager")
        deadline = self.step_timeout_s + extra_s
        began = time.monotonic()
        try:
            if extra_s > 0 and method == "get_observation":  # read-only, may be slow (camera retries): wait while alive
                reply = self._client.call_while_alive(method, *args, timeout_s=deadline, alive=self._server_alive,
                                                      check_s=self.step_timeout_s)
            else:
                reply = self._client.call(method, *args, timeout_s=deadline)
        except RpcTimeout as error:
            self._unresponsive = True  # the caller's stop() then tries the stop channel only (see stop)
            why = (" and no longer answers at all (its stop channel is silent too)" if isinstance(error, RpcServerGone)
                   else f" (deadline {deadline:.2f} s; robot.step_margin_s sets the margin)")
            raise HardwareError(
                f"robot server {self.address} did not answer {method!r} for {time.monotonic() - began:.2f} s{why}; "
                "the arm holds (late actions are dropped by the server). Check the server and the network, "
                "then rerun") from None
        self._unresponsive = False
        return reply

    def _server_alive(self) -> bool:
        """Does the server process still answer (on its stop channel, served by its own thread)?"""
        if self._stop_client is None:
            return True
        try:
            self._stop_client.ping(timeout_s=max(0.05, self.step_margin_s))
        except RpcTimeout:
            return False
        except RemixError:
            return True  # it answered, if only with an error
        return True

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
        self._unresponsive = False
        host = self.address.rsplit(":", 1)[0]
        self._info = info
        self._stop_client = RpcClient(self._stop_client_address(host, info), token=self.token,
                                      timeout_s=self.step_timeout_s)
        try:  # connected and greeted now, so that a stop sent while the server is frozen waits in its socket and
            self._stop_client.ping(timeout_s=min(self.timeout_s, 5.0))  # runs when it resumes (a fresh socket cannot)
        except RemixError as error:
            self.disconnect()
            raise HardwareError(f"robot server {self.address} answers but its stop channel "
                                f"{self._stop_client_address(host, info)} does not ({error}); check stop_address and "
                                "the firewall (both ports must be reachable)") from None
        if info.get("simulated"):
            # instance attributes, so that isinstance(self, SimulatedRobot) holds only while connected to a sim
            self.__dict__.update(tasks=tuple(info["tasks"]), set_task=self._set_task, expert_action=self._expert_action)

    def _stop_client_address(self, host: str, info: dict[str, Any]) -> str:
        return self.stop_address or f"{host}:{info['stop_port']}"

    def _set_task(self, task: str) -> None:
        self._call("set_task", task)

    def _expert_action(self) -> np.ndarray:
        return np.asarray(self._call("expert_action"), dtype=np.float32)

    def disconnect(self) -> None:
        if self._client is None:
            return
        try:
            if not self._unresponsive:  # a frozen server cannot greet a fresh socket; its queued stop holds the arm
                self._client.call("release", timeout_s=min(2.0, self.step_timeout_s))  # runs even when late
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
        budget = float(self._require_info().get("observation_budget_s", 0.0))
        return observation_from_wire(self._step_call("get_observation", extra_s=budget))

    def send_action(self, action: np.ndarray) -> np.ndarray:
        raw = np.asarray(action, dtype=np.float64).reshape(-1)
        if raw.shape != (7,):
            raise ValueError(f"robot action must have 7 values (dx, dy, dz, droll, dpitch, dyaw, gripper), got shape {np.shape(action)}")
        # a blocking move may take longer than a period (its moving time, as the server reports it)
        move_s = float(self._require_info().get("action_time_s", 0.0))
        reply = self._step_call("send_action", raw, extra_s=max(0.0, move_s - self.period_s))
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
            if self._unresponsive:  # it just missed a deadline too: the server is frozen or gone
                raise HardwareError(f"no answer on {self.address}'s stop channel within {self.step_timeout_s:.2f} s "
                                    "either: make sure the arm is held (e-stop)") from None
            log.error("stop channel failed (%s); sending stop on the main channel", error)
            if self._client is not None:
                self._client.call("stop", timeout_s=self.step_timeout_s)

    def resume(self) -> None:
        self._step_call("resume")
        self._stopped = False

    def check_success(self) -> bool | None:
        return self._step_call("check_success")
