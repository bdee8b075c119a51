"""DART expert demos: the robot executes the expert's action plus noise, the store holds the clean label."""

from __future__ import annotations

import numpy as np
import pytest

from remix.common.errors import ConfigError
from remix.data import EpisodeStore

pytest.importorskip("mujoco")
from robots.sim import SimRobot  # noqa: E402
from teleop.expert_demos import dart_action, record_expert_demos, run_expert_episode  # noqa: E402


def test_dart_noise_moves_only_the_translation():
    label = np.array([0.01, 0.0, -0.01, 0.0, 0.0, 0.1, 0.0])
    executed = dart_action(label, 0.5, 0.02, np.random.default_rng(0))
    assert not np.allclose(executed[:3], label[:3]) and np.array_equal(executed[3:], label[3:])
    assert np.array_equal(dart_action(label, 0.0, 0.02, np.random.default_rng(0)), label)
    spread = np.std([dart_action(label, 0.5, 0.02, np.random.default_rng(s))[0] for s in range(400)])
    assert spread == pytest.approx(0.01, rel=0.2)


def test_noisy_execution_records_the_clean_expert_labels_and_ends_on_the_success_frame(tmp_path):
    with SimRobot(task="lift_red", cameras={"cam0": (16, 16)}, control_hz=10.0, max_translation=0.02) as robot:
        clean = run_expert_episode(robot, seed=3, max_steps=80)
        noisy = run_expert_episode(robot, seed=3, max_steps=80, noise=0.5)
        assert clean is not None and noisy is not None
        assert robot.check_success()
        # the labels are expert actions (within the step limit), but the noisy run visited other states
        assert np.abs(noisy["action"][:, :3]).max() <= 0.02 + 1e-6
        assert not np.allclose(noisy["state"][5, :3], clean["state"][5, :3], atol=1e-3)
        assert np.array_equal(noisy["action"][-1, :6], np.zeros(6)), "the success frame is labelled hold"
        report = record_expert_demos(robot, tmp_path / "demos.zarr", range(10), episodes=2, max_steps=80, noise=0.3)
    store = EpisodeStore.open(tmp_path / "demos.zarr")
    assert report.kept == store.num_episodes == 2 and list(report.lengths) == list(store.episode_lengths)
    assert list(store.field("task")) == ["lift_red", "lift_red"] and store.fps == 10.0
    assert store.field("operator")[0] == "expert(dart=0.3)"
    with pytest.raises(ConfigError, match="seeds ran out"):
        with SimRobot(task="lift_red", cameras={}) as robot:
            record_expert_demos(robot, tmp_path / "few.zarr", range(1), episodes=2, max_steps=80)
