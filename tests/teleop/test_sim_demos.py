"""Scripted-headset demos on the MuJoCo sim (WidowX and Franka profiles) feed Re-Mix and policy training.

The training modules are imported at the top on purpose: importing torchvision (it loads triton's
extension) after MuJoCo has opened its EGL context segfaults in this environment.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remix.common.operator_input import ScriptedInput
from remix.core.dataset import WindowSpec, prepare_data
from remix.data import EpisodeStore
from remix.data.domains import discover_domains as find_domains
from remix.policy.config import ModelConfig
from remix.policy.data import MixtureConfig, MixtureDataset, discover_domains, fit_normalization
from teleop.collect import CollectSettings, DemoCollector, open_demo_store
from teleop.factory import make_teleop

pytest.importorskip("mujoco")
from robots.sim import SimRobot  # noqa: E402

REACH_DOWN_AND_GRASP = [
    {"duration": 0.2, "grip": True},
    {"duration": 1.2, "move": [0.0, -0.05, -0.06], "grip": True},  # forward and down
    {"duration": 0.4, "rotate": [0.0, 0.3, 0.0], "grip": True},  # twist about up: yaw
    {"duration": 0.6, "grip": True, "trigger": 1.0},  # close, and let the arm settle
    {"duration": 0.2, "trigger": 1.0},
    {"duration": 0.2, "buttons": ["A"]},
]


def collect_sim(robot: SimRobot, path, task: str, num_demos: int) -> EpisodeStore:
    robot.set_task(task)
    setup = make_teleop({"_target_": "teleop.factory.make_scripted_oculus", "script": [REACH_DOWN_AND_GRASP], "rate_hz": 60.0,
                         "first_sample_timeout_s": 5.0}, robot)
    store = open_demo_store(path, robot)
    with setup.device:
        DemoCollector(robot, setup.device, store, ScriptedInput(),
                      CollectSettings(task=task, num_demos=num_demos, seed=7, max_steps=80),
                      on_episode_start=setup.on_episode_start).run()
    setup.close()
    return EpisodeStore.open(path)


@pytest.mark.parametrize("profile", ["widowx", "franka"])
def test_sim_demos_record_the_operators_motion_and_replay(tmp_path, profile) -> None:
    robot = SimRobot(profile=profile, task="lift_red", cameras={"cam0": (32, 32)})
    robot.connect()
    try:
        store = collect_sim(robot, tmp_path / "sim.zarr", "lift_red", num_demos=1)
        assert store.num_episodes == 1 and store.robot == f"sim-{profile}" and store.fps == robot.control_hz
        episode = store.read_episode(0)
        actions, states = episode["action"].astype(np.float64), episode["state"].astype(np.float64)
        assert len(actions) >= 0.8 * 2.4 * robot.control_hz  # paced at the control rate, not as fast as the sim runs
        net = actions[:, :3].sum(axis=0)
        assert net == pytest.approx([0.06, 0.0, -0.05], abs=3e-3)  # headset -z = forward, -y = down
        assert actions[:, 5].sum() == pytest.approx(0.3, abs=0.02)  # the twist became a yaw
        assert actions[-1, 6] == 0.0
        # replaying the recorded actions from the same scene seed retraces the recorded states
        robot.reset(seed=int(store.field("seed")[0]))
        replayed = []
        for action in actions:
            replayed.append(robot.get_observation().state.astype(np.float64))
            robot.send_action(action)
        assert np.abs(np.array(replayed)[:, :3] - states[:, :3]).max() < 5e-3
    finally:
        robot.disconnect()


def test_sim_demos_load_in_remix_and_policy_training(tmp_path) -> None:
    path = tmp_path / "sim.zarr"
    with SimRobot(profile="widowx", cameras={"cam0": (32, 32)}) as robot:
        collect_sim(robot, path, "lift_red", num_demos=1)
        store = collect_sim(robot, path, "put_red_in_green", num_demos=1)
    domains = find_domains([store.path], domain_key="task", min_domains=2)
    assert [d.name for d in domains] == ["lift_red", "put_red_in_green"]
    data = prepare_data(domains, WindowSpec(n_obs=2, horizon=2, use_state=True, cameras=("cam0",)), n_bins=16,
                        val_fraction=0.0)
    batch = data.train.materialize()
    assert batch["bins"].shape == (store.num_steps, 2, 7) and batch["images/cam0"].shape[1:] == (2, 32, 32, 3)

    model = ModelConfig(cameras=("cam0",), image_size=(32, 32), n_obs=2, horizon=4)
    policy_domains = discover_domains(MixtureConfig(cotrain=(str(store.path),), val_fraction=0.0))
    dataset = MixtureDataset(policy_domains, model, fit_normalization(policy_domains, model, None))
    item = dataset[0]
    assert [d.name for d in policy_domains] == ["sim"] and dataset.sizes == [store.num_steps]
    assert item["images"].shape == (1, 2, 3, 32, 32) and item["action"].shape == (4, 7)
    assert torch.isfinite(item["action"]).all() and len(dataset) == store.num_steps


@pytest.mark.parametrize("profile", ["widowx", "franka"])
def test_sim_expert_teleop_collects_successful_demos(tmp_path, profile) -> None:
    robot = SimRobot(profile=profile, task="put_red_in_green", cameras={"cam0": (32, 32)})
    robot.connect()
    try:
        setup = make_teleop({"_target_": "teleop.factory.make_sim_expert"}, robot)
        with setup.device:
            DemoCollector(robot, setup.device, open_demo_store(tmp_path / "expert.zarr", robot), ScriptedInput(),
                          CollectSettings(task="put_red_in_green", num_demos=2, seed=3, max_steps=120)).run()
        store = EpisodeStore.open(tmp_path / "expert.zarr")
        assert store.num_episodes == 2
        for index in range(2):  # replaying a demo from its scene seed ends with the task solved
            robot.reset(seed=int(store.field("seed")[index]))
            assert not robot.check_success()
            for action in store.read_episode(index)["action"]:
                robot.send_action(action)
            assert robot.check_success()
    finally:
        robot.disconnect()


def test_sim_expert_teleop_refuses_a_robot_without_an_expert() -> None:
    from remix.common.errors import ConfigError
    from robots.mock import MockRobot

    with pytest.raises(ConfigError, match="needs a simulated robot with a scripted expert"):
        make_teleop({"_target_": "teleop.factory.make_sim_expert"}, MockRobot())


def test_collect_switches_the_sim_to_the_collected_task(tmp_path) -> None:
    """The robot's configured task (put_red_in_green) must not leak into demos labelled lift_red."""
    robot = SimRobot(profile="widowx", task="put_red_in_green", cameras={"cam0": (32, 32)})
    with robot:
        setup = make_teleop({"_target_": "teleop.factory.make_sim_expert"}, robot)
        with setup.device:
            DemoCollector(robot, setup.device, open_demo_store(tmp_path / "lift.zarr", robot), ScriptedInput(),
                          CollectSettings(task="lift_red", num_demos=2, seed=11, max_steps=60, unattended=True)).run()
        store = EpisodeStore.open(tmp_path / "lift.zarr")
        assert set(store.field("task")) == {"lift_red"}
        assert store.episode_lengths.max() <= 11  # lifting takes 7-9 steps (+ the final frame); pick-and-place 12-17
        for index in range(2):  # replaying a demo from its seed lifts the cube; it is never carried to the pad
            robot.reset(seed=int(store.field("seed")[index]))
            for action in store.read_episode(index)["action"]:
                robot.send_action(action)
            assert robot.object_position("red")[2] > robot.task.lift_height


def test_a_kept_sim_demo_ends_with_the_success_frame(tmp_path) -> None:
    """The goal image training pairs with a demo (its last frame) shows the task done, as eval's goals do."""
    with SimRobot(profile="widowx", task="lift_red", cameras={"cam0": (32, 32)}) as robot:
        setup = make_teleop({"_target_": "teleop.factory.make_sim_expert"}, robot)
        with setup.device:
            DemoCollector(robot, setup.device, open_demo_store(tmp_path / "d.zarr", robot), ScriptedInput(),
                          CollectSettings(task="lift_red", num_demos=1, seed=5, max_steps=60, unattended=True)).run()
        episode = EpisodeStore.open(tmp_path / "d.zarr").read_episode(0)
        robot.reset(seed=5)
        for action in episode["action"][:-1]:
            robot.send_action(action)
        assert robot.check_success()  # the last recorded frame is the scene after the final move
        assert np.array_equal(robot.get_observation().images["cam0"], episode["images/cam0"][-1])
        assert np.allclose(episode["action"][-1][:6], 0.0)  # recorded with a hold


def test_sim_expert_dart_executes_noise_and_records_the_clean_expert(tmp_path) -> None:
    """teleop.dart: the arm is pushed off the expert's path, the demo holds the expert's own corrections."""
    robot = SimRobot(profile="widowx", task="lift_red", cameras={"cam0": (32, 32)}, control_hz=10.0,
                     max_translation=0.02)
    with robot:
        setup = make_teleop({"_target_": "teleop.factory.make_sim_expert", "dart": 0.3, "seed": 1}, robot)
        with setup.device:
            DemoCollector(robot, setup.device, open_demo_store(tmp_path / "dart.zarr", robot), ScriptedInput(),
                          CollectSettings(task="lift_red", num_demos=2, seed=5, max_steps=120, unattended=True)).run()
        store = EpisodeStore.open(tmp_path / "dart.zarr")
        assert store.num_episodes == 2
        episode = store.read_episode(0)
        moves = episode["action"][:-1, :3]
        # the expert's approach steps are clipped to the 2 cm limit exactly; executed noise would never be
        assert (np.abs(moves) == np.float32(0.02)).sum() >= 5
        travelled = np.diff(episode["state"][:, :3], axis=0)
        assert np.abs(travelled - moves).max() > 0.004  # the arm did not go where the labels say
    with pytest.raises(Exception, match="teleop.dart applies to the clean expert only"):
        make_teleop({"_target_": "teleop.factory.make_sim_expert", "dart": 0.3, "profile": "worse"}, robot)
