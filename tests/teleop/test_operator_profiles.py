"""Graded sim operators (teleop.operator_profiles): what each deviation does, and that profiled demos are
recorded with their operator and still end in success (junk excepted)."""

from __future__ import annotations

import numpy as np
import pytest

from remix.common.errors import ConfigError
from remix.common.operator_input import ScriptedInput
from remix.data import EpisodeStore
from teleop.collect import CollectSettings, DemoCollector, open_demo_store
from teleop.factory import make_teleop
from teleop.operator_profiles import (
    PROFILES,
    OperatorProfile,
    ProfiledActions,
    ProfiledExpertTeleop,
    get_profile,
)

pytest.importorskip("mujoco")
from robots.sim import SimRobot  # noqa: E402

OPEN_STATE = np.array([0.3, 0.0, 0.1, 0.0, 0.0, 0.0, 1.0])
MOVE = np.array([0.03, -0.01, 0.0, 0.0, 0.0, 0.1, 1.0])


def test_the_clean_profile_sends_the_expert_action() -> None:
    actions = ProfiledActions(PROFILES["expert"], 0.05, 0.25, seed=0)
    assert np.array_equal(actions.act(MOVE, OPEN_STATE), MOVE)


def test_noise_grows_with_the_move_and_stays_within_the_step_limit() -> None:
    actions = ProfiledActions(OperatorProfile("n", noise=0.5), 0.05, 0.25, seed=0)
    still = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    assert np.array_equal(actions.act(still, OPEN_STATE), still)  # no move, no jitter (fine moves stay fine)
    jitter = np.array([actions.act(MOVE, OPEN_STATE)[:3] - MOVE[:3] for _ in range(500)])
    assert jitter.std() == pytest.approx(0.5 * np.linalg.norm(MOVE[:3]), rel=0.25)
    big = ProfiledActions(OperatorProfile("n", noise=5.0), 0.05, 0.25, seed=0)
    assert max(np.abs(big.act(MOVE, OPEN_STATE)[:3]).max() for _ in range(50)) <= 0.05


def test_hesitation_holds_and_detours_move_off_then_hand_back() -> None:
    pause = ProfiledActions(OperatorProfile("h", hesitation=1.0, hesitation_steps=(2, 2)), 0.05, 0.25, seed=0)
    held = [pause.act(MOVE, OPEN_STATE) for _ in range(2)]
    assert all(np.allclose(a[:6], 0) and a[6] == 1.0 for a in held)
    detour = ProfiledActions(OperatorProfile("d", detour=1.0, detour_steps=(3, 3), detour_size=0.6), 0.05, 0.25, seed=1)
    steps = [detour.act(MOVE, OPEN_STATE) for _ in range(3)]
    assert all(np.linalg.norm(a[:3]) == pytest.approx(0.03) and a[2] >= 0 for a in steps)  # never into the table
    assert detour.events["detour"] == 1


def test_a_failed_grasp_closes_early_above_the_cube() -> None:
    actions = ProfiledActions(OperatorProfile("g", failed_grasp=1.0), 0.05, 0.25, seed=0)
    close = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    script = [actions.act(close, OPEN_STATE) for _ in range(3)]
    assert script[0][2] > 0 and script[0][6] == 1.0  # rise with the fingers open, then close on nothing
    assert script[1][6] == 0.0 and script[2][6] == 0.0 and actions.events["failed_grasp"] == 1
    closed_state = OPEN_STATE.copy()
    closed_state[6] = 0.0  # already closed (holding): a close is never turned into a miss
    assert np.array_equal(actions.act(close, closed_state), close)


def test_unknown_profiles_and_bad_values_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown operator profile 'great'.*better"):
        get_profile("great")
    with pytest.raises(ConfigError, match="probability"):
        OperatorProfile("x", detour=2.0)
    with pytest.raises(ConfigError, match="unknown teleop"):
        make_teleop({"_target_": "teleop.factory.make_sim_expert", "profil": "worse"}, None)  # type: ignore[arg-type]


def test_sim_fingers_open_again_after_closing_on_nothing() -> None:
    """A missed grasp must be retryable: closed fingers used to pass through each other and lock."""
    with SimRobot(task="lift_red", cameras={"cam0": (32, 32)}) as robot:
        robot.reset(seed=1)
        for gripper in (0.0, 0.0, 1.0, 1.0):
            robot.send_action(np.array([0, 0, 0, 0, 0, 0, gripper], dtype=float))
        assert robot.get_observation().state[6] > 0.95


@pytest.mark.parametrize("profile", ["worse", "junk"])
def test_profiled_demos_record_their_operator(tmp_path, profile) -> None:
    with SimRobot(task="lift_red", cameras={"cam0": (32, 32)}) as robot:
        setup = make_teleop({"_target_": "teleop.factory.make_sim_expert", "profile": profile, "seed": 3}, robot)
        assert isinstance(setup.device, ProfiledExpertTeleop)
        with setup.device:
            DemoCollector(robot, setup.device, open_demo_store(tmp_path / "d.zarr", robot), ScriptedInput(),
                          CollectSettings(task="lift_red", num_demos=2, seed=20, max_steps=150, unattended=True,
                                          operator=profile, domain=f"{profile}_1")).run()
        store = EpisodeStore.open(tmp_path / "d.zarr")
        assert list(store.field("operator")) == [profile] * 2 and set(store.field("domain")) == {f"{profile}_1"}
        for index in range(2):
            robot.reset(seed=int(store.field("seed")[index]))
            for action in store.read_episode(index)["action"]:
                robot.send_action(action)
            assert robot.check_success() is (profile != "junk")  # graded demos still succeed; junk does not
