"""The policy API without a model: replay, scripted expert, spec parsing and errors."""

from __future__ import annotations

import numpy as np
import pytest

from remix.common.errors import RemixError
from remix.policy import ReplayPolicy, ScriptedPolicy, load_policy
from remix.policy.base import validate_action
from remix.policy.loading import parse_replay_spec
from tests.policy.conftest import FakeSimRobot


def test_replay_plays_actions_in_order_then_holds_with_last_gripper(observation):
    actions = np.stack([np.r_[np.full(6, i * 0.01), i % 2] for i in range(5)]).astype(np.float32)
    policy = ReplayPolicy(actions)
    policy.reset(observation)
    played = [policy.act(observation) for _ in range(5)]
    np.testing.assert_array_equal(np.stack(played), actions)
    assert policy.done
    held = policy.act(observation)
    np.testing.assert_array_equal(held[:6], 0.0)
    assert held[6] == actions[-1, 6]
    policy.reset(observation)
    np.testing.assert_array_equal(policy.act(observation), actions[0])


@pytest.mark.parametrize("bad", [np.zeros((0, 7)), np.zeros((3, 6)), np.full((2, 7), np.nan)])
def test_replay_rejects_unusable_actions(bad):
    with pytest.raises(RemixError):
        ReplayPolicy(bad)


def test_scripted_policy_returns_the_experts_action(observation):
    robot = FakeSimRobot()
    policy = load_policy("scripted:expert", robot=robot)
    assert isinstance(policy, ScriptedPolicy)
    policy.reset(observation)
    first, second = policy.act(observation), policy.act(observation)
    assert robot.calls == 2
    assert first.dtype == np.float32 and first.shape == (7,)
    assert second[0] == pytest.approx(0.02)


def test_scripted_policy_needs_a_robot_with_an_expert():
    with pytest.raises(RemixError, match="scripted expert"):
        load_policy("scripted:expert")
    with pytest.raises(RemixError, match="scripted expert"):
        load_policy("scripted:expert", robot=object())
    with pytest.raises(RemixError, match="unknown scripted policy"):
        load_policy("scripted:oracle", robot=FakeSimRobot())


def test_scripted_policy_refuses_a_nan_expert_action(observation):
    robot = FakeSimRobot()
    robot.expert_action = lambda: np.full(7, np.nan)
    with pytest.raises(RemixError, match="non-finite"):
        ScriptedPolicy(robot).act(observation)


def test_parse_replay_spec():
    assert parse_replay_spec("replay:/data/demo#store.zarr#12") == ("/data/demo#store.zarr", 12)
    for bad in ["replay:store.zarr", "replay:#3", "replay:store.zarr#x", "replay:store.zarr#-1"]:
        with pytest.raises(RemixError, match="replay:<store path>#<episode index>"):
            parse_replay_spec(bad)


def test_unknown_spec_and_non_checkpoint_dir_are_clear_errors(tmp_path):
    with pytest.raises(RemixError, match="not an existing checkpoint"):
        load_policy(tmp_path / "missing")
    with pytest.raises(RemixError, match="not a policy checkpoint"):
        load_policy(tmp_path)


def test_validate_action_rejects_wrong_shapes_and_inf():
    with pytest.raises(RemixError, match="shape"):
        validate_action(np.zeros(6), "test")
    assert validate_action(np.zeros(4), "test", action_dim=4).shape == (4,)  # other arms' action sizes
    with pytest.raises(RemixError, match="expected \\(4,\\)"):
        validate_action(np.zeros(7), "test", action_dim=4)
    with pytest.raises(RemixError, match="non-finite"):
        validate_action(np.r_[np.zeros(6), np.inf], "test")
    assert validate_action([0, 0, 0, 0, 0, 0, 1], "test").dtype == np.float32


def test_replay_spec_plays_back_a_stored_episode(tmp_path, observation):
    from remix.data.synthetic import SyntheticDomain, make_synthetic_store

    store = make_synthetic_store(tmp_path / "demo.zarr", SyntheticDomain("demo", num_episodes=3, episode_length=6))
    expected = store.read_episode(1, keys=("action",))["action"]
    policy = load_policy(f"replay:{tmp_path / 'demo.zarr'}#1")
    policy.reset(observation)
    np.testing.assert_allclose(np.stack([policy.act(observation) for _ in range(6)]), expected)
    with pytest.raises(RemixError, match="episode 3 is not in store"):
        load_policy(f"replay:{tmp_path / 'demo.zarr'}#3")
    with pytest.raises(RemixError):
        load_policy(f"replay:{tmp_path / 'nothing.zarr'}#0")


def test_replay_plays_any_action_size(observation):
    actions = np.array([[0.01, 0.0, 0.0, 1.0], [0.0, 0.02, 0.0, 0.0]], dtype=np.float32)
    policy = ReplayPolicy(actions, gripper_dims=(3,))
    policy.reset(observation)
    np.testing.assert_array_equal([policy.act(observation) for _ in range(2)], actions)
    np.testing.assert_array_equal(policy.act(observation), [0.0, 0.0, 0.0, 0.0])  # hold, gripper as last sent
