"""`remix-train`: the console script over `configs/train.yaml` (see that file for every setting)."""

from __future__ import annotations

import os
import signal

from omegaconf import DictConfig, OmegaConf

from remix.common.cli import hydra_main
from remix.common.errors import ConfigError
from remix.policy.augment import AugmentConfig
from remix.policy.config import ModelConfig
from remix.policy.data import MixtureConfig
from remix.policy.train import TrainConfig, train


def configs_from(cfg: DictConfig) -> tuple[ModelConfig, MixtureConfig, TrainConfig]:
    """Typed, validated configs from the composed hydra config."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    training = OmegaConf.to_container(cfg.train, resolve=True)
    assert isinstance(data, dict) and isinstance(model, dict) and isinstance(training, dict)
    for key in ("stores", "cotrain"):
        value = data.get(key) or ()
        data[key] = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
    try:
        augment = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in training.pop("augment").items()})
        return ModelConfig.from_dict(model), MixtureConfig(**data), TrainConfig(augment=augment, **training)
    except TypeError as error:
        raise ConfigError(f"bad train config: {error}") from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@hydra_main("train", positional=("output_dir",))
def train_main(cfg: DictConfig) -> int:
    """remix-train OUTPUT_DIR data.stores=[...] [data.weights=weights.json] [data.cotrain=[...]] [resume=true|overwrite=true]"""
    model, mixture, training = configs_from(cfg)
    signal.signal(signal.SIGTERM, _interrupt)  # preemption: save where we are, like Ctrl-C
    checkpoint = train(model, mixture, training, cfg.output_dir, resume=cfg.resume, overwrite=bool(cfg.overwrite))
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"final checkpoint: {checkpoint}")
    return 0


if __name__ == "__main__":  # torchrun -m remix.policy.cli ...
    train_main()
