"""`load_policy`: one entry point from a policy spec (checkpoint dir, replay:, scripted:, tcp://) to a Policy.

It lives apart from `remix.policy.base` so that the Policy interface imports none of its implementations
(base <- client, base <- inference; no cycle), and each implementation is imported only when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from remix.common.errors import RemixError
from remix.policy.base import Policy, ReplayPolicy, ScriptedPolicy

if TYPE_CHECKING:
    from robots.robot import Robot


def parse_replay_spec(spec: str) -> tuple[str, int]:
    """Split "replay:<store>#<episode>" into (store path, episode index)."""
    body = spec[len("replay:"):]
    path, sep, episode = body.rpartition("#")
    if not sep or not path or not episode.strip().isdigit():
        raise RemixError(f"bad replay policy spec {spec!r}; write replay:<store path>#<episode index>, "
                         "e.g. replay:data/demos.zarr#3")
    return path, int(episode)


def load_policy(spec: str | Path, robot: Robot | None = None, **options: Any) -> Policy:
    """Build the policy named by `spec`.

    - a checkpoint directory written by `remix-train` (options: device, seed, sampler, ...);
    - "replay:<store>#<episode>": play back a stored episode;
    - "scripted:expert": the sim robot's scripted expert (needs `robot`);
    - "tcp://host:port": a policy served by `remix-policy-server` (option: token).
    """
    text = str(spec).strip()
    if text.startswith("replay:"):
        return ReplayPolicy.from_store(*parse_replay_spec(text))
    if text.startswith("scripted:"):
        name = text[len("scripted:"):]
        if name != "expert":
            raise RemixError(f"unknown scripted policy {name!r}; the only one is 'scripted:expert'")
        return ScriptedPolicy(robot)
    if text.startswith("tcp://"):
        from remix.policy.client import RemotePolicy

        return RemotePolicy(text, **options)
    path = Path(text).expanduser()
    if path.is_dir():
        from remix.policy.checkpoint import is_checkpoint_dir

        if is_checkpoint_dir(path):
            from remix.policy.inference import DiffusionPolicy

            return DiffusionPolicy.load(path, **options)
        raise RemixError(f"{path} is a directory but not a policy checkpoint (no model.safetensors + "
                         "config.json); pass a checkpoint directory written by remix-train")
    raise RemixError(
        f"cannot load policy {text!r}: not an existing checkpoint directory; use a checkpoint dir, "
        "replay:<store>#<episode>, scripted:expert or tcp://host:port"
    )
