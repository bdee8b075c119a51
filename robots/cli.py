"""`remix-goal`: capture or import the goal image(s) of a task.

    remix-goal robot=widowx task=carrot_to_rack                     # operator arranges, confirms
    remix-goal robot=franka task=cup_in_bowl goal_pose=[0.5,0,0.2,0,0,0,0]
    remix-goal robot=sim task=put_red_in_green expert=true         # the sim expert makes the goal
    remix-goal robot=widowx task=carrot_to_rack load=photo.png     # import an image as the goal
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from remix.common.cli import hydra_main, operator_from_config
from remix.common.config import register
from remix.common.errors import RemixError
from robots.goals import capture_goal, load_goal, save_goal
from robots.robot import make_robot
from robots.sim_interface import SimulatedRobot


@dataclass(frozen=True)
class GoalCommand:
    """remix-goal's settings (the robot and the operator are config groups)."""

    robot: Any = None  # robot=widowx|franka|sim|mock|remote
    operator: Any = None  # operator=terminal|scripted
    task: str | None = None  # required: the task name (a folder name)
    out: str = "goals"  # root folder of goal images
    goal_pose: Any = None  # [x, y, z, roll, pitch, yaw, gripper]: move there first (through the safety layer)
    expert: bool = False  # simulated robots: the scripted expert solves the task, its final frame is the goal
    load: str | None = None  # import this image file as the goal instead of capturing one
    seed: int | None = None  # simulated robots: scene seed
    overwrite: bool = False  # replace an existing goal for the task


register("goal_schema", GoalCommand)


def run_goal(cfg: DictConfig) -> int:
    if not cfg.task:
        raise RemixError("remix-goal needs task=<name>")
    task = str(cfg.task)
    robot = make_robot(cfg.robot)
    if cfg.load:
        try:
            cameras = dict(robot.observation_spec.cameras) or None
        except RemixError:  # a remote robot only knows its cameras once connected; keep the image as is
            cameras = None
        observation = load_goal(cfg.load, cameras)
        record = save_goal(cfg.out, task, observation, robot.name, source=f"file:{cfg.load}", overwrite=bool(cfg.overwrite))
    else:
        operator = operator_from_config(cfg.operator)
        goal_pose = OmegaConf.to_container(cfg.goal_pose) if cfg.goal_pose is not None else None
        with robot:
            if isinstance(robot, SimulatedRobot):  # after connect: a remote robot knows it is a sim only then
                robot.set_task(task)
            observation, source = capture_goal(robot, task, operator, goal_pose=goal_pose, use_expert=bool(cfg.expert),
                                               seed=cfg.seed)
            robot.stop()
        record = save_goal(cfg.out, task, observation, robot.name, source=source, overwrite=bool(cfg.overwrite))
    print(f"saved goal for {task!r} ({', '.join(observation.images)}) to {record.path}", flush=True)
    return 0


@hydra_main("goal", positional=("task",))
def goal_main(cfg: DictConfig) -> int:
    """remix-goal: capture, confirm and save a task's goal image(s) for evaluation.

    Usage:
      remix-goal TASK robot=widowx|franka|sim|mock [goal_pose=[x,y,z,roll,pitch,yaw,gripper]] [out=goals]
      remix-goal TASK load=picture.png              # use an image you already have
    The robot moves to the goal pose (or the operator arranges the scene), the operator confirms or retakes,
    and goals/TASK/<camera>.png plus goal.json are written.
    """
    return run_goal(cfg)
