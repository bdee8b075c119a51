"""Console scripts `remix-weights` (configs/weights.yaml) and `remix-subset` (configs/subset.yaml).

remix-weights                                   # built-in synthetic demo, CPU, a few minutes
remix-weights data.paths=[a.zarr,b.zarr] out=runs/w
remix-weights remix=bridge data.paths=[bridge.zarr] data.domain_key=scene
torchrun --nproc_per_node=2 -m remix.core.cli data.paths=[...]   # several GPUs (DDP)
remix-subset runs/w/weights.json fraction=0.25 out=subset/
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from remix.common.cli import hydra_main
from remix.common.errors import ConfigError
from remix.core.dro import DROConfig
from remix.core.features import FeatureSettings
from remix.core.model import OptimConfig
from remix.core.run import ActionSettings, DataSettings, ModelSettings, WeightsSettings, run_weights
from remix.core.train import ReferenceConfig, StageConfig


def _tuple(value: object) -> tuple:
    return tuple(value) if value is not None else ()


def settings_from_config(cfg: DictConfig) -> WeightsSettings:
    """Typed settings from the composed hydra config (values checked by the dataclasses)."""
    c = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(c, dict)
    if not c.get("out"):
        raise ConfigError("out= is empty; give a run directory, e.g. out=runs/weights")
    d, a, m, r, o, g = c["data"], c["actions"], c["model"], c["reference"], c["optim"], c["dro"]
    try:
        optim = OptimConfig(
            lr=float(o["lr"]),
            weight_decay=float(o["weight_decay"]),
            warmup_steps=int(o["warmup_steps"]),
            grad_clip=float(o["grad_clip"]),
        )
        stage = StageConfig(
            steps=int(r["steps"]),
            batch_size=int(c["batch_size"]),
            log_every=int(c["log_every"]),
            num_workers=int(d["num_workers"]),
            optim=optim,
        )
        return WeightsSettings(
            out=Path(c["out"]),
            data=DataSettings(
                paths=tuple(str(p) for p in _tuple(d["paths"])),
                domain_key=d["domain_key"],
                val_fraction=float(d["val_fraction"]),
                in_memory=bool(d["in_memory"]),
                num_workers=int(d["num_workers"]),
                max_memory_gb=float(d["max_memory_gb"]),
                builtin_image_size=int(d["builtin"]["image_size"]),
                builtin_episode_length=int(d["builtin"]["episode_length"]),
                builtin_episodes_scale=int(d["builtin"]["episodes_scale"]),
            ),
            actions=ActionSettings(
                a["normalization"], bool(a["normalize_gripper"]), a["bins"], int(a["n_bins"])
            ),
            model=ModelSettings(
                n_obs=int(m["n_obs"]),
                horizon=int(m["horizon"]),
                use_state=bool(m["use_state"]),
                cameras=tuple(_tuple(m["cameras"])),
                image_encoder=m["image_encoder"],
                use_goal=bool(m["use_goal"]),
                state_hidden=int(m["state_hidden"]),
                hidden_dims=tuple(int(h) for h in m["hidden_dims"]),
                dropout=float(m["dropout"]),
            ),
            reference=ReferenceConfig(
                stage=stage,
                eval_every=int(r["eval_every"]),
                eval_samples=int(r["eval_samples"]),
                tolerance=float(r["tolerance"]),
                patience=int(r["patience"]),
                stop_when_overfit=bool(r["stop_when_overfit"]),
                min_gain=None if r["min_gain"] is None else float(r["min_gain"]),
            ),
            dro=DROConfig(
                eta=float(g["eta"]),
                smoothing=float(g["smoothing"]),
                smoothing_target=g["smoothing_target"],
                clip_excess=bool(g["clip_excess"]),
                scoring=g["scoring"],
                absent=g["absent"],
                unlearnable=g["unlearnable"],
            ),
            dro_steps=int(g["steps"]) if g["steps"] is not None else None,
            dro_checkpoint_every=int(g["checkpoint_every"]) if g["checkpoint_every"] is not None else None,
            cache_reference=bool(g["cache_reference"]),
            plain_dro=bool(g["plain"]),
            keep_checkpoints=bool(r["keep_checkpoints"]),
            export_floor=float(c["export"]["floor"]),
            seed=int(c["seed"]),
            device=str(c["device"]),
            overwrite=bool(c["overwrite"]),
            resume=bool(c["resume"]),
            features=FeatureSettings(
                mode=c["features"]["mode"],
                reference_head=bool(c["features"]["reference_head"]),
                weights=c["features"]["weights"],
                batch_size=int(c["features"]["batch_size"]),
            ),
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"bad config value ({error}); check the key=value overrides") from None


def _check_ranges(s: WeightsSettings) -> None:
    if s.reference.stage.steps < 1 or s.reference.eval_every < 1 or s.reference.stage.batch_size < 1:
        raise ConfigError("reference.steps, reference.eval_every and batch_size must be >= 1")
    if not 0 < s.data.val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be in (0, 1), got {s.data.val_fraction}")
    if s.dro_steps is not None and s.dro_steps < 1:
        raise ConfigError(f"dro.steps must be >= 1 or null (= reference steps), got {s.dro_steps}")


@hydra_main("weights")
def weights_main(cfg: DictConfig) -> int:
    """remix-weights: learn Re-Mix domain weights and write a run directory."""
    settings = settings_from_config(cfg)
    _check_ranges(settings)
    try:
        run_weights(settings, config_yaml=OmegaConf.to_yaml(cfg))
    finally:
        from remix.core.distributed import shutdown

        shutdown()
    return 0


@hydra_main("subset", positional=("weights",))
def subset_main(cfg: DictConfig) -> int:
    """remix-subset: keep `fraction` of the data, whole episodes, water-filled by the Re-Mix weights."""
    from remix.core.subset import run_subset

    run_subset(
        weights=cfg.weights,
        fraction=float(cfg.fraction),
        out=cfg.out,
        seed=int(cfg.seed),
        overwrite=bool(cfg.overwrite),
        paths=list(cfg.paths) if cfg.paths else None,
    )
    return 0


if __name__ == "__main__":  # torchrun -m remix.core.cli ...
    weights_main()
