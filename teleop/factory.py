"""Build the teleop device a config names (configs/teleop/<name>.yaml; its `_target_` is a builder here).

`oculus`: a Quest over ADB. `keyboard`: key presses from the operator input. `scripted_oculus`: the
same Quest code path against a fake ADB server whose headset plays a scripted hand motion (CI,
dry runs); its script restarts whenever an episode starts, as an operator waits for the reset.
`sim_expert`: the sim robot's scripted expert drives, and a demo is kept once the task succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from remix.common.errors import ConfigError
from robots.robot import Robot
from teleop.device import EventKeys, TeleopDevice
from teleop.fake_headset import FakeAdbServer, FakeHeadset, HeadsetScript, Segment
from teleop.keyboard import KeyboardConfig, KeyboardTeleop
from teleop.mapping import MappingConfig
from teleop.oculus import AdbSettings, OculusReader
from teleop.quest import QuestTeleop
from teleop.sim_expert import SimExpertTeleop


@dataclass
class TeleopSetup:
    """A device plus what the session must call at each episode start, and what to release at the end."""

    device: TeleopDevice
    on_episode_start: list[Callable[[], None]] = field(default_factory=list)
    resources: ExitStack = field(default_factory=ExitStack)

    def close(self) -> None:
        self.resources.close()


def _take(cfg: dict[str, Any], allowed: set[str], what: str) -> dict[str, Any]:
    unknown = set(cfg) - allowed
    if unknown:
        raise ConfigError(f"unknown {what} keys {sorted(unknown)}; allowed: {sorted(allowed)}")
    return cfg


def _event_keys(cfg: Mapping[str, Any]) -> EventKeys:
    keys = dict(cfg.get("keys") or {})
    _take(keys, {"keep", "discard", "rerecord"}, "teleop.keys")
    return EventKeys(**{k: str(v) for k, v in keys.items()})


def _mapping(cfg: Mapping[str, Any]) -> MappingConfig:
    values = dict(cfg.get("mapping") or {})
    _take(values, set(MappingConfig.__dataclass_fields__), "teleop.mapping")
    if "base_from_headset" in values:
        values["base_from_headset"] = tuple(tuple(float(v) for v in row) for row in values["base_from_headset"])
    try:
        return MappingConfig(**values)
    except TypeError as error:
        raise ConfigError(f"bad teleop.mapping value: {error}") from None


def _adb_settings(cfg: Mapping[str, Any], port_override: int | None = None) -> AdbSettings:
    names = set(AdbSettings.__dataclass_fields__) - {"tag"}
    values = {k: cfg[k] for k in names if k in cfg and cfg[k] is not None}
    if port_override is not None:
        values["adb_port"] = port_override
    return AdbSettings(**values)


def _script(cfg: Any) -> HeadsetScript:
    if not cfg:
        raise ConfigError("teleop.script is empty; give a list of episodes, each a list of segments")
    try:
        return HeadsetScript([[Segment.from_mapping(segment) for segment in episode] for episode in cfg])
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigError(f"bad teleop.script: {error}; each segment needs a duration (s)") from None


OCULUS_KEYS = set(AdbSettings.__dataclass_fields__) - {"tag"} | {"_target_", "mapping", "keys", "first_sample_timeout_s",
                                                                  "pose_frame"}


def make_keyboard(cfg: dict[str, Any], robot: Robot) -> TeleopSetup:
    """Key presses from the operator input, one step per press."""
    _take(cfg, {"_target_", "step_translation", "step_rotation", "gripper_toggle", "keys"}, "teleop (keyboard)")
    config = KeyboardConfig(**{k: cfg[k] for k in ("step_translation", "step_rotation", "gripper_toggle") if k in cfg})
    return TeleopSetup(KeyboardTeleop(config, robot.action_spec, _event_keys(cfg)))


def make_oculus(cfg: dict[str, Any], robot: Robot) -> TeleopSetup:
    """A Quest over ADB (oculus_reader app)."""
    _take(cfg, OCULUS_KEYS, "teleop (oculus)")
    reader = OculusReader(_adb_settings(cfg))
    device = QuestTeleop(reader, _mapping(cfg), robot.action_spec, _event_keys(cfg),
                         float(cfg.get("first_sample_timeout_s", 10.0)), pose_frame=cfg.get("pose_frame", "head"))
    return TeleopSetup(device)


def make_scripted_oculus(cfg: dict[str, Any], robot: Robot) -> TeleopSetup:
    """The Quest code path against a fake ADB server whose headset plays `script` (CI, dry runs)."""
    _take(cfg, OCULUS_KEYS | {"script", "rate_hz"}, "teleop (scripted_oculus)")
    script = _script(cfg.get("script"))
    setup = TeleopSetup(device=None)  # type: ignore[arg-type]
    server = FakeAdbServer([FakeHeadset(script=script, rate_hz=float(cfg.get("rate_hz", 60.0)))])
    server.start()
    setup.resources.callback(server.close)
    reader = OculusReader(_adb_settings(cfg, port_override=server.port))
    setup.device = QuestTeleop(reader, _mapping(cfg), robot.action_spec, _event_keys(cfg),
                               float(cfg.get("first_sample_timeout_s", 10.0)), pose_frame=cfg.get("pose_frame", "head"))
    setup.on_episode_start.append(script.episode_started)
    return setup


def make_sim_expert(cfg: dict[str, Any], robot: Robot) -> TeleopSetup:
    """The sim robot's scripted expert drives, optionally graded by an operator profile."""
    _take(cfg, {"_target_", "profile", "seed", "dart"}, "teleop (sim_expert)")
    dart = float(cfg.get("dart") or 0.0)
    if cfg.get("profile") in (None, "expert"):
        return TeleopSetup(SimExpertTeleop(robot, dart=dart, seed=int(cfg.get("seed") or 0)))
    if dart:
        raise ConfigError("teleop.dart applies to the clean expert only (a graded operator records what it sends); "
                          "set teleop.profile=null or teleop.dart=0")
    expert = SimExpertTeleop(robot)
    from teleop.operator_profiles import ProfiledExpertTeleop, get_profile

    return TeleopSetup(ProfiledExpertTeleop(expert, get_profile(str(cfg["profile"])), robot.limits.max_translation,
                                            robot.limits.max_rotation, seed=int(cfg.get("seed") or 0)))


BUILDERS: dict[str, Callable[[dict[str, Any], Robot], TeleopSetup]] = {
    f"{__name__}.{fn.__name__}": fn for fn in (make_keyboard, make_oculus, make_scripted_oculus, make_sim_expert)
}


def make_teleop(cfg: Mapping[str, Any], robot: Robot) -> TeleopSetup:
    """The device for `cfg` (a plain dict from the `teleop` config group, `_target_` naming its builder)."""
    cfg = dict(cfg)
    if "kind" in cfg:  # the old plug-in key
        raise ConfigError(f"teleop: 'kind: {cfg['kind']}' is now '_target_: {__name__}.make_{cfg['kind']}'")
    target = cfg.get("_target_")
    if target not in BUILDERS:
        raise ConfigError(f"unknown teleop _target_ {target!r}; use teleop=oculus|keyboard|scripted_oculus|sim_expert "
                          f"(builders: {', '.join(sorted(BUILDERS))})")
    return BUILDERS[target](cfg, robot)
