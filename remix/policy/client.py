"""`RemotePolicy`: the `Policy` API over the network, talking to `remix-policy-server`.

The rollout loop runs next to the robot and the model runs on a GPU machine; this client sends the
goal and each observation over `remix.common.rpc` (ZeroMQ + msgpack) and checks every action it gets back.
A server that does not answer within `timeout_s` raises `RpcTimeout` (a RemixError), so the rollout
can hold the robot instead of waiting forever.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from remix.common.errors import RemixError
from remix.common.rpc import RpcClient
from remix.policy.base import ACTION_DIM, Policy, validate_action

if TYPE_CHECKING:
    from robots.robot import Observation


def observation_message(observation: Observation) -> dict[str, Any]:
    """The wire form of an observation: plain dicts of numpy arrays."""
    return {
        "images": {name: np.ascontiguousarray(image) for name, image in observation.images.items()},
        "state": np.asarray(observation.state, dtype=np.float32),
        "timestamps": {name: float(t) for name, t in getattr(observation, "timestamps", {}).items()},
    }


TOKEN_ENV = "REMIX_POLICY_TOKEN"  # the policy server's shared token when none is given


class RemotePolicy(Policy):
    """A policy served at `tcp://host:port`."""

    def __init__(self, address: str, token: object = None, timeout_s: float = 10.0, **_ignored: Any) -> None:
        self.address = address
        token = os.environ.get(TOKEN_ENV) if token is None else token
        self.client = RpcClient(address, token=token, timeout_s=timeout_s)
        self.info: dict[str, Any] = self.client.call("info")

    def reset(self, goal: Observation) -> None:
        self.client.call("reset", observation_message(goal))

    def act(self, observation: Observation) -> np.ndarray:
        return validate_action(self.client.call("act", observation_message(observation)), f"policy server {self.address}",
                               int(self.info.get("action_dim", ACTION_DIM)))

    def close(self) -> None:
        """Give the server's episode up (another client may start one), then close the socket."""
        try:
            self.client.call("release", timeout_s=1.0)
        except RemixError:
            pass  # a dead or older server: nothing to release
        self.client.close()
