"""`remix-policy-server`: serve any policy spec over `remix.common.rpc` so rollouts can query it remotely.

    remix-policy-server runs/widowx/checkpoints/step_00400000 port=5556 device=cuda token=SECRET

Methods: `info()`, `reset(goal)`, `act(observation)`, where observations travel as
{"images": {camera: uint8 HxWx3}, "state": float32 (7,), "timestamps": {...}}. One client session at
a time: a second rollout calling `reset` starts a new episode for the policy.
"""

from __future__ import annotations

import inspect
import signal
import time
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, make_dataclass
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from remix.common.cli import hydra_main
from remix.common.config import register
from remix.common.errors import ConfigError, RemixError
from remix.common.rpc import RpcServer, current_request
from remix.policy.base import ACTION_DIM, Policy
from remix.policy.loading import load_policy

MAX_IMAGE_SIDE = 4096


@dataclass(frozen=True)
class WireObservation:
    """An observation rebuilt from its wire form (same fields as robots.robot.Observation)."""

    images: dict[str, np.ndarray]
    state: np.ndarray
    timestamps: dict[str, float]

    @classmethod
    def from_message(cls, message: Any) -> WireObservation:
        if not isinstance(message, Mapping) or not isinstance(message.get("images"), Mapping):
            raise RemixError("malformed observation message; send {images: {camera: HxWx3 uint8}, state: (7,)}")
        state = np.asarray(message.get("state"), dtype=np.float32)
        if state.ndim != 1:
            raise RemixError(f"observation state has shape {state.shape}; send a flat (7,) float32 state")
        images = {str(k): np.asarray(v) for k, v in message["images"].items()}
        for name, image in images.items():
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or max(image.shape[:2]) > MAX_IMAGE_SIDE:
                raise RemixError(f"observation image {name!r} is {image.dtype} {image.shape}; send uint8 HxWx3 frames "
                                 f"of at most {MAX_IMAGE_SIDE} pixels a side")
        return cls(images, state, dict(message.get("timestamps") or {}))


def policy_handlers(policy: Policy, spec: str, owner_idle_s: float = 30.0) -> dict[str, Any]:
    """The RPC methods that expose `policy`."""
    config = getattr(policy, "config", None)
    info = {"spec": spec, "type": type(policy).__name__,
            "cameras": list(config.cameras) if config is not None else [],
            "action_dim": int(config.action_dim) if config is not None else ACTION_DIM,
            "target_domain": getattr(policy, "target_domain", None)}

    session = PolicySession(owner_idle_s)

    def reset(goal: Any) -> None:
        observation = WireObservation.from_message(goal)
        session.claim("reset")
        policy.reset(observation)

    def act(observation: Any) -> np.ndarray:
        parsed = WireObservation.from_message(observation)
        session.claim("act")
        return policy.act(parsed)

    return {"info": lambda: info, "reset": reset, "act": act, "release": session.release}


class PolicySession:
    """One owner per policy episode: a second client's `reset`/`act` is refused (it would silently restart or
    interleave the first client's episode) until the owner releases it or stays silent `owner_idle_s`."""

    def __init__(self, owner_idle_s: float = 30.0) -> None:
        self.owner_idle_s = float(owner_idle_s)
        self.owner: bytes | None = None
        self._last = 0.0

    def claim(self, method: str) -> None:
        request = current_request()
        client = request.client_id if request is not None else None
        now = time.monotonic()
        if self.owner is not None and client != self.owner and now - self._last < self.owner_idle_s:
            raise RemixError(f"policy {method} refused: the server is running another client's episode (its last call "
                             f"{now - self._last:.1f} s ago); wait for it to end or start another remix-policy-server")
        self.owner, self._last = client, now

    def release(self) -> None:
        request = current_request()
        if request is None or request.client_id == self.owner:
            self.owner = None


def policy_server(policy: Policy, spec: str, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> RpcServer:
    """An RpcServer exposing `policy` (not yet serving): `with policy_server(...) as server:` serves
    on a background thread until the block ends; `server.serve_forever()` serves in the foreground."""
    return RpcServer(policy_handlers(policy, spec), host=host, port=port, token=token)


def _inference_options() -> type:
    """`inference.*`: DiffusionPolicy's keyword options, with the constructor's own defaults (not copied)."""
    from remix.policy.inference import DiffusionPolicy

    hints = typing.get_type_hints(DiffusionPolicy.__init__)
    options = [(name, hints.get(name, Any), field(default=param.default))
               for name, param in inspect.signature(DiffusionPolicy.__init__).parameters.items()
               if param.kind is inspect.Parameter.KEYWORD_ONLY and name != "source"]
    return make_dataclass("InferenceOptions", options, frozen=True)


InferenceOptions = _inference_options()


@dataclass(frozen=True)
class PolicyServerCommand:
    """remix-policy-server's settings."""

    policy: str | None = None  # checkpoint directory written by remix-train, or replay:<store>#<episode>
    host: str = "127.0.0.1"  # 0.0.0.0 to accept other machines (then set a token)
    port: int = 5556
    token: str | None = "${oc.env:REMIX_POLICY_TOKEN,null}"  # shared secret every client must send
    inference: InferenceOptions = field(default_factory=InferenceOptions)  # type: ignore[valid-type]


register("policy_server_schema", PolicyServerCommand)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@hydra_main("policy_server", positional=("policy",))
def main(cfg: DictConfig) -> int:
    """remix-policy-server POLICY [host=... port=... token=... inference.device=cuda inference.inference_steps=10 ...]"""
    if not cfg.policy:
        raise ConfigError("remix-policy-server needs a policy: remix-policy-server CHECKPOINT_DIR (or replay:STORE#EP)")
    options = {k: v for k, v in OmegaConf.to_container(cfg.inference, resolve=True).items() if v is not None}
    spec = str(cfg.policy)
    policy = load_policy(spec, **(options if not spec.startswith(("replay:", "scripted:", "tcp://")) else {}))
    try:
        server = policy_server(policy, spec, host=str(cfg.host), port=int(cfg.port), token=cfg.token)
    except BaseException:
        policy.close()
        raise
    print(f"serving {spec} on {server.bind_address}{'' if cfg.token else ', no token'} (Ctrl-C to stop)", flush=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        policy.close()
    return 0
