"""`remix-collect`: teleoperate demos of one task into an episode store.

    remix-collect task=carrot_to_rack robot=widowx teleop=oculus num_demos=25
    remix-collect task=reach robot=mock teleop=keyboard store=demos/mock.zarr
    remix-collect task=reach robot=mock teleop=scripted_oculus operator.kind=scripted   # no hardware

Rerunning with the same store and task continues the count of kept demos.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig

from remix.common.cli import as_str_list, hydra_main, operator_from_config, to_plain
from remix.common.errors import ConfigError
from teleop.collect import CollectSettings, DemoCollector, open_demo_store
from teleop.factory import make_teleop
from teleop.operator_profiles import ProfiledExpertTeleop
from teleop.preview import CameraPreview


def run_collect(cfg: DictConfig) -> int:
    from robots.robot import make_robot

    if cfg.task is None or not str(cfg.task).strip():
        raise ConfigError("no task given; run remix-collect task=<name> (e.g. task=carrot_to_rack)")
    settings = CollectSettings(
        task=str(cfg.task), num_demos=int(cfg.num_demos), operator=str(cfg.operator.name or "unknown"),
        domain=None if cfg.domain is None else str(cfg.domain), max_steps=int(cfg.max_steps),
        min_steps=int(cfg.min_steps), record_idle=bool(cfg.record_idle),
        stop_keys=tuple(as_str_list(cfg.stop_keys, "stop_keys")), seed=None if cfg.seed is None else int(cfg.seed),
        unattended=cfg.teleop.kind == "sim_expert" if cfg.unattended is None else bool(cfg.unattended),
    )
    operator = operator_from_config(cfg.operator)
    robot = make_robot(cfg.robot)
    with robot:  # connected first: a remote robot learns its name and specs from its server
        store_path = Path(str(cfg.store)).expanduser() if cfg.store else Path("demos") / f"{robot.name}.zarr"
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
  remix-collect task=NAME robot=widowx|franka|sim|mock teleop=oculus|keyboard [num_demos=25] [store=demos/x.zarr]
Per demo: the robot resets, the operator drives it (Quest: hold grip to move, trigger = gripper), then keeps (A),
discards (B) or re-records (stick). Kept demos are durable at once; rerunning continues the count.
"""

main = hydra_main("collect", positional=("task",), usage=USAGE)(run_collect)
