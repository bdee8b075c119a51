"""A remix-collect rerun on the sim continues the scene seeds: no byte-identical duplicate demos (finding 8)."""

from __future__ import annotations

import numpy as np
import pytest

from remix.common.operator_input import ScriptedInput
from remix.data import EpisodeStore
from teleop.collect import CollectSettings, DemoCollector, open_demo_store
from teleop.factory import make_teleop

pytest.importorskip("mujoco")
from robots.sim import SimRobot  # noqa: E402


@pytest.mark.parametrize("seed", [None, 3])
def test_a_rerun_records_new_scenes(tmp_path, seed) -> None:
    robot = SimRobot(profile="widowx", task="lift_red", cameras={"cam0": (16, 16)})
    robot.connect()
    try:
        for wanted in (1, 2):  # the second run "continues the count" to 2
            setup = make_teleop({"_target_": "teleop.factory.make_sim_expert"}, robot)
            with setup.device:
                DemoCollector(robot, setup.device, open_demo_store(tmp_path / "demos.zarr", robot), ScriptedInput(),
                              CollectSettings(task="lift_red", num_demos=wanted, seed=seed, max_steps=120)).run()
        store = EpisodeStore.open(tmp_path / "demos.zarr")
        assert store.num_episodes == 2
        seeds = store.field("seed").tolist()
        assert len(set(seeds)) == 2 and min(seeds) >= (seed or 0), seeds
        first, second = (store.read_episode(i)["images/cam0"] for i in range(2))
        assert not np.array_equal(first[0], second[0]), "the rerun recorded the same scene again"
    finally:
        robot.disconnect()
