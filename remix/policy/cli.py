"""`remix-train`: the console script; `TrainCommand` below holds every setting and its default.

configs/train.yaml only selects that schema (`train_schema`); the sections are the library's own
dataclasses (data: MixtureConfig, model: ModelConfig, train: TrainConfig), so the CLI and the Python
API run with the same defaults; the one difference is model.action_dim / model.state_dim, which the CLI
reads from the stores unless given (`ModelSection`).
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from remix.common.cli import hydra_main
from remix.common.config import build, register
from remix.policy.config import ModelConfig
from remix.policy.data import MixtureConfig
from remix.policy.train import TrainConfig, train


@dataclass(frozen=True)
class ModelSection(ModelConfig):
    """model: the library's ModelConfig, except that the action and state widths default to the stores'.

    ModelConfig keeps 7 for code that builds a network from it directly; remix-train reads the widths
    from the data (`remix.policy.train.resolve_widths`) and checks a width given here against every store.
    """

    action_dim: int | None = None  # None: the stores' action width
    state_dim: int | None = None  # None: the stores' state width


@dataclass(frozen=True)
class TrainCommand:
    """remix-train's settings."""

    out: str = "runs/policy"  # run directory (checkpoints/, metrics.jsonl, losses.png)
    resume: Any = False  # false | true (newest checkpoint in out) | path of a checkpoint dir
    overwrite: bool = False  # true: delete an earlier run in out first (otherwise that is an error)
    data: MixtureConfig = field(default_factory=MixtureConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)


register("train_schema", TrainCommand)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@hydra_main("train", positional=("out",))
def train_main(cfg: DictConfig) -> int:
    """remix-train OUT data.paths=[...] [data.weights=weights.json] [data.cotrain=[...]] [resume=true|overwrite=true]"""
    command = build(TrainCommand, cfg)
    signal.signal(signal.SIGTERM, _interrupt)  # preemption: save where we are, like Ctrl-C
    checkpoint = train(command.model, command.data, command.train, command.out, resume=command.resume,
                       overwrite=command.overwrite)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"final checkpoint: {checkpoint}")
    return 0


if __name__ == "__main__":  # torchrun -m remix.policy.cli ...
    train_main()
