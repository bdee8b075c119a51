"""`remix-collect`: teleoperate demos of one task into an episode store.

    remix-collect task=carrot_to_rack robot=widowx teleop=oculus num_demos=25
    remix-collect task=reach robot=mock teleop=keyboard out=demos/mock.zarr
    remix-collect task=reach robot=mock teleop=scripted_oculus operator=scripted   # no hardware

Rerunning with the same store and task continues the count of kept demos.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from remix.common.cli import as_str_list, hydra_main, operator_from_config, to_plain
from remix.common.config import register
from remix.common.errors import ConfigError
from teleop.collect import CollectSettings, DemoCollector, open_demo_store
from teleop.factory import make_sim_expert, make_teleop
from teleop.operator_profiles import ProfiledExpertTeleop
from teleop.preview import CameraPreview

_COLLECT = {f.name: f.default for f in fields(CollectSettings)}


@dataclass(frozen=True)
class CollectCommand:
    """remix-collect's settings (defaults from teleop.collect.CollectSettings; robot, teleop, operator are groups)."""

    robot: Any = None  # robot=mock|sim|widowx|franka|remote
    teleop: Any = None  # teleop=oculus|keyboard|scripted_oculus|sim_expert
    operator: Any = None  # operator=terminal|scripted
    task: str | None = None  # task name stored with every demo (required)
    num_demos: int = _COLLECT["num_demos"]  # kept demos wanted for the task (the paper: 25 per task)
    out: str | None = None  # episode store, created for the robot on first use; None = demos/<robot name>.zarr
    domain: str | None = _COLLECT["domain"]  # Re-Mix domain of the demos; None = the task name
    max_steps: int = _COLLECT["max_steps"]  # control steps per attempt (idle ones too); then keep / discard
    min_steps: int = _COLLECT["min_steps"]  # kept episodes with fewer driven steps are discarded
    record_idle: bool = _COLLECT["record_idle"]  # also record steps where the operator is not driving
    seed: int | None = _COLLECT["seed"]  # sim robots: attempt i resets with scene seed seed+i
    unattended: bool | None = None  # no human drives: no pacing, discard at max_steps; None = true for sim_expert
    progress: bool = True  # rich progress bar (kept / wanted) on stderr
    preview: bool = False  # live camera preview window (OpenCV; needs a display)
    stop_keys: tuple[str, ...] = _COLLECT["stop_keys"]  # operator keys that halt the arm at once


register("collect_schema", CollectCommand)


def run_collect(cfg: DictConfig) -> int:
    from robots.robot import make_robot

    if cfg.task is None or not str(cfg.task).strip():
        raise ConfigError("no task given; run remix-collect task=<name> (e.g. task=carrot_to_rack)")
    settings = CollectSettings(
        task=str(cfg.task), num_demos=int(cfg.num_demos), operator=str(cfg.operator.name or "unknown"),
        domain=None if cfg.domain is None else str(cfg.domain), max_steps=int(cfg.max_steps),
        min_steps=int(cfg.min_steps), record_idle=bool(cfg.record_idle),
        stop_keys=tuple(as_str_list(cfg.stop_keys, "stop_keys")), seed=None if cfg.seed is None else int(cfg.seed),
        unattended=cfg.teleop._target_ == f"{make_sim_expert.__module__}.{make_sim_expert.__name__}" if cfg.unattended is None else bool(cfg.unattended),
    )
    operator = operator_from_config(cfg.operator)
    robot = make_robot(cfg.robot)
    with robot:  # connected first: a remote robot learns its name and specs from its server
        store_path = Path(str(cfg.out)).expanduser() if cfg.out else Path("demos") / f"{robot.name}.zarr"
        setup = make_teleop(to_plain(cfg.teleop), robot)  # validates the teleop config before anything is written
        preview = CameraPreview() if cfg.preview else None
        if isinstance(setup.device, ProfiledExpertTeleop):  # a graded sim operator is the demos' operator
            settings = replace(settings, operator=setup.device.profile.name)
        try:
            with setup.device:  # the headset is found (or the error says why) before the store is created
                store = open_demo_store(store_path, robot)
                collector = DemoCollector(robot, setup.device, store, operator, settings,
                                          on_episode_start=setup.on_episode_start, preview=preview,
                                          progress=bool(cfg.progress))
                result = collector.run()
        finally:
            if preview is not None:
                preview.close()
            setup.close()
    print(f"{result.kept}/{result.target} demos of {settings.task!r} in {store_path}")
    return 0


USAGE = """remix-collect: collect teleoperated demos (the paper's 25 per task) into an episode store.

Usage:
  remix-collect task=NAME robot=widowx|franka|sim|mock teleop=oculus|keyboard [num_demos=25] [out=demos/x.zarr]
Per demo: the robot resets, the operator drives it (Quest: hold grip to move, trigger = gripper), then keeps (A),
discards (B) or re-records (stick). Kept demos are durable at once; rerunning continues the count.
"""

main = hydra_main("collect", positional=("task",), usage=USAGE)(run_collect)
