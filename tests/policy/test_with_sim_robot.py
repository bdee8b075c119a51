"""The policies against the real MuJoCo sim robot (robots.sim), not fakes."""

from __future__ import annotations

import numpy as np
import pytest

from remix.policy import load_policy
from tests.policy.conftest import write_tiny_checkpoint

pytest.importorskip("mujoco")


@pytest.fixture
def sim_robot():
    from robots.sim import SimRobot

    with SimRobot(profile="widowx", task="put_red_in_green", cameras={"cam0": (32, 32)}, seed=0) as robot:
        yield robot


def test_scripted_expert_solves_the_sim_task(sim_robot):
    goal = sim_robot.reset()
    policy = load_policy("scripted:expert", robot=sim_robot)
    policy.reset(goal)
    for _ in range(150):
        sim_robot.send_action(policy.act(sim_robot.get_observation()))
        if sim_robot.check_success():
            break
    assert sim_robot.check_success()


def test_a_checkpoint_policy_drives_the_sim_robot(tmp_path):
    from robots.sim import SimRobot

    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    policy = load_policy(path, seed=0)
    # the camera matches the tiny model's 16x16: inference refuses another size instead of resizing
    with SimRobot(profile="widowx", task="put_red_in_green", cameras={"cam0": (16, 16)}, seed=0) as robot:
        policy.reset(robot.reset())
        start = robot.get_observation().state.copy()
        for _ in range(6):
            applied = robot.send_action(policy.act(robot.get_observation()))
            assert applied.shape == (7,) and np.all(np.isfinite(applied))
        assert not np.allclose(robot.get_observation().state[:3], start[:3])


def test_loading_a_checkpoint_after_the_sim_renders_does_not_crash(tmp_path):
    """Import remix.policy, render with a sim robot, then load a checkpoint (e.g. after taking a goal image)."""
    import subprocess
    import sys

    path, _, _ = write_tiny_checkpoint(tmp_path / "ckpt")
    script = (
        "import torch  # noqa: F401 - torch already loaded, as in any process that trains or evaluates\n"
        "from remix.policy import load_policy\n"
        "from robots.sim import SimRobot\n"
        "with SimRobot(cameras={'cam0': (16, 16)}) as robot:  # the tiny model's size\n"
        "    goal = robot.reset()  # renders: the EGL context exists from here on\n"
        f"    policy = load_policy({str(path)!r})\n"
        "    policy.reset(goal)\n"
        "    print(policy.act(robot.get_observation()).shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(7,)" in result.stdout
