"""remix-collect's session on the mock robot: scripted headset and keyboard, keep/discard, faults, rerun."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from remix.common.errors import StoreError
from remix.common.operator_input import ScriptedInput
from remix.data import EpisodeStore
from robots.geometry import compose_rotation
from robots.mock import MockRobot
from teleop.collect import CollectSettings, DemoCollector, Outcome, count_kept, open_demo_store
from teleop.factory import make_teleop
from teleop.recorder import EpisodeRecorder

FORWARD_AND_GRASP = [
    {"duration": 0.2, "grip": True},
    {"duration": 0.8, "move": [0.0, 0.0, -0.04], "grip": True},  # hand away from the user: robot +x
    {"duration": 0.4, "move": [-0.02, 0.0, 0.0], "grip": True, "trigger": 1.0},  # hand left: robot +y
    {"duration": 0.2, "grip": True, "trigger": 1.0},  # hold still so the robot catches up before release
    {"duration": 0.2, "trigger": 1.0},
    {"duration": 0.2, "buttons": ["A"]},
]
DISCARDED = [
    {"duration": 0.2, "grip": True},
    {"duration": 0.4, "move": [0.0, 0.03, 0.0], "grip": True},
    {"duration": 0.2, "buttons": ["B"]},
]


def scripted_teleop(robot, episodes):
    return make_teleop({"_target_": "teleop.factory.make_scripted_oculus", "script": episodes, "rate_hz": 100.0, "lost_after_s": 0.5,
                        "first_sample_timeout_s": 5.0}, robot)


def mock(**overrides) -> MockRobot:
    values = dict(control_hz=20.0, cameras={"cam0": (32, 32)})
    values.update(overrides)
    return MockRobot(**values)


def collect(robot, setup, store_path, operator_input=None, **settings):
    store = open_demo_store(store_path, robot)
    with setup.device:
        collector = DemoCollector(robot, setup.device, store, operator_input or ScriptedInput(),
                                  CollectSettings(**settings), on_episode_start=setup.on_episode_start)
        result = collector.run()
    setup.close()
    return result, collector


def assert_actions_reproduce_states(episode: dict[str, np.ndarray]) -> None:
    """Each recorded state is the previous one moved by the recorded (applied) action: the demo replays."""
    states, actions = episode["state"].astype(np.float64), episode["action"].astype(np.float64)
    for t in range(len(actions) - 1):
        assert states[t + 1][:3] == pytest.approx(states[t][:3] + actions[t][:3], abs=1e-5)
        assert states[t + 1][3:6] == pytest.approx(compose_rotation(states[t][3:6], actions[t][3:6]), abs=1e-5)
        assert states[t + 1][6] == pytest.approx(actions[t][6], abs=1e-6)


def test_scripted_headset_demos_land_in_the_store_and_replay(tmp_path) -> None:
    path = tmp_path / "demos.zarr"
    with mock() as robot:
        result, collector = collect(robot, scripted_teleop(robot, [DISCARDED, FORWARD_AND_GRASP]), path,
                                    task="reach", num_demos=2, operator="alice")
        assert result.kept == 2 and result.outcomes == [Outcome.DISCARDED, Outcome.KEPT, Outcome.DISCARDED, Outcome.KEPT]
        store = EpisodeStore.open(path)
        assert store.num_episodes == 2 and store.robot == "mock" and store.fps == 20.0
        assert list(store.field("task")) == ["reach", "reach"] and list(store.field("operator")) == ["alice"] * 2
        assert list(store.field("device")) == ["oculus"] * 2
        assert np.all(store.field("ended_at") > store.field("started_at"))
        for index in range(2):
            episode = store.read_episode(index)
            assert episode["images/cam0"].shape == (len(episode["action"]), 32, 32, 3)
            assert np.all(np.diff(episode["timestamp"]) > 0)
            assert_actions_reproduce_states(episode)
            # the hand moved 4 cm away and 2 cm left: the robot went 4 cm forward, 2 cm left, and grasped
            net = episode["action"][:, :3].sum(axis=0)
            assert net == pytest.approx([0.04, 0.02, 0.0], abs=2e-3)
            assert episode["action"][-1, 6] == 0.0 and episode["action"][0, 6] == 1.0
            # replaying the recorded actions on a fresh robot reproduces the recorded motion
            robot.reset()
            for action, state in zip(episode["action"], episode["state"]):
                assert robot.get_observation().state == pytest.approx(state, abs=1e-5)
                robot.send_action(action)
        assert np.median(collector.loop_times) < robot.period_s / 2  # the loop keeps its 20 Hz with time to spare


def test_collection_is_paced_by_the_shared_rate_loop(tmp_path, count_rate_ticks) -> None:
    """One tick of remix.common.rate.Rate per step at the robot's rate; unattended runs are not paced."""
    import teleop.collect as collect_module
    made = count_rate_ticks(collect_module)
    with mock() as robot:
        result, _ = collect(robot, scripted_teleop(robot, [FORWARD_AND_GRASP]), tmp_path / "paced.zarr",
                            task="reach", num_demos=1)
        assert result.kept == 1 and made and all(r.period_s == pytest.approx(robot.period_s) for r in made)
        assert sum(r.ticks for r in made) >= EpisodeStore.open(tmp_path / "paced.zarr").num_steps


def test_rerun_continues_the_count(tmp_path) -> None:
    path = tmp_path / "demos.zarr"
    with mock() as robot:
        collect(robot, scripted_teleop(robot, [FORWARD_AND_GRASP]), path, task="reach", num_demos=1)
        result, _ = collect(robot, scripted_teleop(robot, [FORWARD_AND_GRASP]), path, task="reach", num_demos=2)
        assert result.kept == 2 and result.outcomes == [Outcome.KEPT]
        operator = ScriptedInput()
        done, _ = collect(robot, scripted_teleop(robot, [FORWARD_AND_GRASP]), path, operator, task="reach", num_demos=2)
        assert done.outcomes == [] and "nothing left to collect" in operator.messages[0]
        other, _ = collect(robot, scripted_teleop(robot, [FORWARD_AND_GRASP]), path, task="push", num_demos=1)
        store = EpisodeStore.open(path)
        assert count_kept(store, "reach") == 2 and count_kept(store, "push") == 1 and store.num_episodes == 3
        assert "2/2 kept" in " ".join(operator.messages)


def test_keyboard_demo_on_a_blocking_robot(tmp_path) -> None:
    keys = [None] * 3 + ["i", None, None, None, "i", None, None, None, "u", None, None, None, "c", None, None, None,
                         "1"] + [None] * 200
    operator = ScriptedInput(keys=keys)
    with mock(control_mode="blocking", moving_time_s=0.03) as robot:
        setup = make_teleop({"_target_": "teleop.factory.make_keyboard", "step_translation": 0.01}, robot)
        result, _ = collect(robot, setup, tmp_path / "kb.zarr", operator, task="reach", num_demos=1)
    assert result.kept == 1
    episode = EpisodeStore.open(tmp_path / "kb.zarr").read_episode(0)
    # only driven steps (keys may share a step: polling is asynchronous) and the final scene, held
    assert 2 <= len(episode["action"]) <= 5 and np.allclose(episode["action"][-1][:6], 0.0)
    assert episode["action"][:, :3].sum(axis=0) == pytest.approx([0.02, 0.0, 0.01])
    assert episode["action"][-1, 6] == 0.0
    assert_actions_reproduce_states(episode)


def test_stop_key_halts_and_asks(tmp_path) -> None:
    hold_forever = [{"duration": 30.0, "move": [0.0, 0.0, -0.02], "grip": True}]
    operator = ScriptedInput(answers=["discard", "quit"], keys=[None] * 30 + ["s"] + [None] * 30 + ["s"])
    with mock() as robot:
        result, _ = collect(robot, scripted_teleop(robot, [hold_forever]), tmp_path / "s.zarr", operator,
                            task="reach", num_demos=1)
        assert robot.events.stops == 2
    assert result.outcomes == [Outcome.DISCARDED, Outcome.QUIT] and result.kept == 0
    assert all("stop key" in prompt for prompt in operator.prompts)
    assert EpisodeStore.open(tmp_path / "s.zarr").num_episodes == 0


def test_step_limit_asks_keep_or_discard(tmp_path) -> None:
    endless = [{"duration": 30.0, "move": [0.0, 0.0, -0.05], "grip": True}]
    operator = ScriptedInput(answers=["keep"])
    with mock() as robot:
        result, _ = collect(robot, scripted_teleop(robot, [endless]), tmp_path / "m.zarr", operator,
                            task="reach", num_demos=1, max_steps=8)
    assert result.kept == 1 and "8 steps" in operator.prompts[0]
    assert len(EpisodeStore.open(tmp_path / "m.zarr").read_episode(0)["action"]) <= 8


def test_robot_fault_drops_only_that_attempt(tmp_path) -> None:
    with mock(faults={"reflex": [4]}) as robot:
        result, _ = collect(robot, scripted_teleop(robot, [FORWARD_AND_GRASP]), tmp_path / "f.zarr",
                            task="reach", num_demos=1)
    assert result.outcomes == [Outcome.FAULT, Outcome.KEPT]
    assert EpisodeStore.open(tmp_path / "f.zarr").num_episodes == 1


def test_store_of_another_setup_is_refused(tmp_path) -> None:
    path = tmp_path / "demos.zarr"
    with mock() as robot:
        open_demo_store(path, robot)
    with mock(cameras={"cam0": (48, 48)}) as other:
        with pytest.raises(StoreError, match="another setup.*choose a new store path"):
            open_demo_store(path, other)


def test_recording_does_not_block_the_loop(tmp_path) -> None:
    """A slow writer (50 ms per frame) must not slow add_step; the episode still arrives complete."""
    with mock() as robot:
        store = open_demo_store(tmp_path / "slow.zarr", robot)
        recorder = EpisodeRecorder(store)
        original = recorder._take_step

        def slow_take(*args):
            time.sleep(0.05)
            original(*args)

        recorder._take_step = slow_take
        recorder.begin()
        observation = robot.reset()
        start = time.perf_counter()
        for _ in range(10):
            recorder.add_step(observation, np.array([0, 0, 0, 0, 0, 0, 1.0]))
        enqueue_s = time.perf_counter() - start
        assert enqueue_s < 0.25  # the writer needs 0.5 s for these ten; the loop must not wait for it
        assert recorder.commit(task="t").result(timeout=5) == 0
        recorder.close()
    assert len(EpisodeStore.open(tmp_path / "slow.zarr").read_episode(0)["action"]) == 10


def test_headset_lost_mid_episode_holds_and_resumes_without_a_jump(tmp_path) -> None:
    from teleop.fake_headset import FakeAdbServer, FakeHeadset, HeadsetScript, Segment
    from teleop.mapping import MappingConfig
    from teleop.oculus import AdbSettings, OculusReader
    from teleop.quest import QuestTeleop

    script = HeadsetScript([[Segment(0.1, grip=True), Segment(2.0, move=(0.0, 0.0, -0.04), grip=True),
                             Segment(0.3, grip=True), Segment(0.3, buttons=("A",))]])
    headset = FakeHeadset(script=script, rate_hz=100)
    operator = ScriptedInput()
    with FakeAdbServer([headset]) as server, mock() as robot:
        reader = OculusReader(AdbSettings(adb_port=server.port, lost_after_s=0.2, reconnect_after_s=0.5,
                                          read_timeout_s=0.05))
        device = QuestTeleop(reader, MappingConfig(), robot.action_spec, first_sample_timeout_s=5.0)

        def lose_headset_soon() -> None:
            script.episode_started()
            threading.Timer(0.6, headset.pause, args=(0.8,)).start()  # taken off for 0.8 s mid-motion

        store = open_demo_store(tmp_path / "lost.zarr", robot)
        with device:
            result = DemoCollector(robot, device, store, operator, CollectSettings(task="reach", num_demos=1),
                                   on_episode_start=[lose_headset_soon]).run()
    assert result.kept == 1
    assert any("input lost: holding still" in m for m in operator.messages)
    assert any("input back" in m for m in operator.messages)
    episode = EpisodeStore.open(tmp_path / "lost.zarr").read_episode(0)
    times = episode["timestamp"]
    assert np.diff(times).max() > 0.5  # no driven steps were recorded while the headset was gone
    forward = episode["action"][:, 0]
    # the hand's motion while the headset was lost is not replayed as a jump: origins are re-taken
    assert forward.max() <= 0.02 + 1e-6
    assert 0.01 < forward.sum() < 0.04 - 0.01
