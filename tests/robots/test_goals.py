"""Goal images: operator confirmation, goal poses, sim expert goals, durable files, imports, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from remix.common.errors import RemixError
from remix.common.operator_input import ScriptedInput
from robots.goals import capture_goal, load_goal, move_to_pose, save_goal
from robots.mock import MockRobot
from robots.sim import SimRobot


def test_operator_can_retake_then_the_goal_is_saved_and_loads_back(tmp_path) -> None:
    operator = ScriptedInput(answers=["", "n", "", "y"])
    with MockRobot(cameras={"cam0": (32, 32), "wrist": (16, 16)}) as robot:
        observation, source = capture_goal(robot, "stack", operator)
        record = save_goal(tmp_path, "stack", observation, robot.name, source)
    assert len(operator.prompts) == 4 and source == "operator"
    assert sorted(p.name for p in record.path.iterdir()) == ["cam0.png", "goal.json", "wrist.png"]
    meta = json.loads((record.path / "goal.json").read_text())
    assert meta["robot"] == "mock" and meta["cameras"] == {"cam0": [32, 32], "wrist": [16, 16]}
    loaded = load_goal(record.path, {"cam0": (32, 32), "wrist": (16, 16)})
    np.testing.assert_array_equal(loaded.images["cam0"], observation.images["cam0"])
    np.testing.assert_allclose(loaded.state, observation.state)


def test_existing_goal_is_not_overwritten_by_accident(tmp_path) -> None:
    with MockRobot() as robot:
        observation = robot.reset()
    save_goal(tmp_path, "t", observation, "mock", "operator")
    with pytest.raises(RemixError, match="overwrite=true"):
        save_goal(tmp_path, "t", observation, "mock", "operator")
    save_goal(tmp_path, "t", observation, "mock", "operator", overwrite=True)


def test_goal_pose_is_reached_through_the_safety_layer() -> None:
    with MockRobot() as robot:
        robot.reset()
        state = move_to_pose(robot, [0.4, 0.1, 0.05, 0, 0, 0.3, 0.0])
        np.testing.assert_allclose(state[:3], [0.4, 0.1, 0.05], atol=0.005)
        assert state[6] == 0.0 and len(robot.commands) == 4, "0.17 m (diagonal) in four steps of at most 5 cm"
        first = np.asarray(robot.commands[0].position) - [0.3, 0.0, 0.15]
        assert np.linalg.norm(first) == pytest.approx(0.05)  # Euclidean, not 5 cm per axis
        with pytest.raises(RemixError, match="outside the robot's workspace"):
            move_to_pose(robot, [2.0, 0, 0, 0, 0, 0, 1])


def test_goal_pose_moves_are_paced_by_the_shared_rate_loop(count_rate_ticks) -> None:
    """Rate mode: one tick of remix.common.rate.Rate per action at the robot's rate; no hand-made sleep loop."""
    import robots.goals as goals
    made = count_rate_ticks(goals)
    with MockRobot(control_mode="rate", control_hz=50.0) as robot:
        robot.reset()
        move_to_pose(robot, [0.4, 0.1, 0.05, 0, 0, 0.3, 0.0])
        assert len(made) == 1 and made[0].period_s == pytest.approx(0.02) and made[0].ticks == len(robot.commands) == 4
    with MockRobot(control_mode="blocking", control_hz=50.0) as robot:  # a blocking move paces itself
        robot.reset()
        move_to_pose(robot, [0.4, 0.1, 0.05, 0, 0, 0.3, 0.0])
    assert len(made) == 1


def test_sim_expert_goal_shows_the_solved_task(tmp_path) -> None:
    with SimRobot(task="lift_red", cameras={"cam0": (32, 32)}) as robot:
        observation, source = capture_goal(robot, "lift_red", ScriptedInput(), use_expert=True, seed=0)
        assert source == "expert" and robot.check_success()


def test_image_files_import_and_bad_files_are_clear_errors(tmp_path) -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    image[..., 0] = 200  # red in RGB
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    goal = load_goal(tmp_path / "photo.png", {"cam0": (48, 64)})
    assert goal.images["cam0"].shape == (48, 64, 3) and goal.images["cam0"][0, 0, 0] == 200
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(RemixError, match="not a readable image"):
        load_goal(tmp_path / "junk.png")
    (tmp_path / "half").mkdir()
    with pytest.raises(RemixError, match="not a complete goal folder"):
        load_goal(tmp_path / "half")
    with pytest.raises(RemixError, match="must be letters"):
        save_goal(tmp_path, "../escape", goal, "mock", "file")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from robots.cli import goal_main; goal_main()", *args],
                          capture_output=True, text=True, timeout=120)


def test_goal_cli_with_the_sim_expert_and_errors(tmp_path) -> None:
    result = run_cli("robot=sim", "put_red_in_green", "expert=true", f"out={tmp_path}", "seed=1", "operator=scripted")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "put_red_in_green" / "cam0.png").is_file() and "saved goal" in result.stdout
    result = run_cli("robot=sim", "put_red_in_green", "expert=true", f"out={tmp_path}", "operator=scripted")
    assert result.returncode == 1 and "overwrite=true" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("robot=mock", f"out={tmp_path}")
    assert result.returncode == 1 and "needs task" in result.stderr
