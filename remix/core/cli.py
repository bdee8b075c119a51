"""Console scripts `remix-weights` (configs/weights.yaml) and `remix-subset` (configs/subset.yaml).

remix-weights                                   # built-in synthetic demo, CPU, a few minutes
remix-weights data.paths=[a.zarr,b.zarr] out=runs/w
remix-weights remix=bridge data.paths=[bridge.zarr] data.domain_key=scene
torchrun --nproc_per_node=2 -m remix.core.cli data.paths=[...]   # several GPUs (DDP)
remix-subset runs/w/weights.json fraction=0.25 out=subset/
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from remix.common.cli import hydra_main
from remix.common.config import build, register
from remix.common.errors import ConfigError
from remix.core.dro import DROConfig
from remix.core.features import FeatureSettings
from remix.core.model import OptimConfig
from remix.core.run import ActionSettings, DataSettings, ModelSettings, WeightsSettings, run_weights
from remix.core.train import ReferenceConfig, StageConfig

# The library dataclasses hold every default; the sections below only regroup them the way the CLI
# spells its keys (e.g. reference.steps for ReferenceConfig.stage.steps) and read their defaults there.
_DATA, _STAGE, _REFERENCE, _SETTINGS = DataSettings(), StageConfig(), ReferenceConfig(), WeightsSettings(out=Path("."))


@dataclass(frozen=True)
class BuiltinData:
    """data.builtin: the built-in synthetic dataset (used when data.paths is empty)."""

    image_size: int = _DATA.builtin_image_size  # 0 = state only
    episode_length: int = _DATA.builtin_episode_length
    episodes_scale: int = _DATA.builtin_episodes_scale  # multiply every built-in domain's episode count


@dataclass(frozen=True)
class DataSection:
    """data: episode stores and how they are read."""

    paths: tuple[str, ...] = _DATA.paths  # episode stores; empty = built-in synthetic dataset in out/builtin-data
    domain_key: str | None = _DATA.domain_key  # per-episode field splitting a store into domains; None = one per store
    val_fraction: float = _DATA.val_fraction  # held-out episodes per domain for early stopping
    in_memory: bool = _DATA.in_memory  # stack all windows into tensors once; false = read lazily
    num_workers: int = _DATA.num_workers  # DataLoader workers when in_memory=false
    max_memory_gb: float = _DATA.max_memory_gb  # refuse in_memory beyond this estimate
    builtin: BuiltinData = field(default_factory=BuiltinData)


@dataclass(frozen=True)
class ReferenceSection:
    """reference: the reference stage (early-stopped) and its evaluation cadence."""

    steps: int = _STAGE.steps  # upper bound; training stops once the choice is final (stop_when_overfit)
    eval_every: int = _REFERENCE.eval_every
    eval_samples: int = _REFERENCE.eval_samples  # windows per domain and split for the loss curves
    tolerance: float = _REFERENCE.tolerance
    patience: int = _REFERENCE.patience
    stop_when_overfit: bool = _REFERENCE.stop_when_overfit
    min_gain: float | None = _REFERENCE.min_gain  # None: no domain is called unlearnable (release)
    past_chosen_evals: int = _REFERENCE.past_chosen_evals  # ablation: take the checkpoint this many evals later
    keep_checkpoints: bool = _SETTINGS.keep_checkpoints  # keep every evaluated checkpoint, not only the chosen one


@dataclass(frozen=True)
class DroSection(DROConfig):
    """dro: the alpha update (DROConfig) plus the DRO stage's length and mode."""

    steps: int | None = _SETTINGS.dro_steps  # None = as many steps as the reference ran
    checkpoint_every: int | None = _SETTINGS.dro_checkpoint_every  # None = reference.eval_every
    cache_reference: bool = _SETTINGS.cache_reference  # reference NLL computed once per window
    plain: bool = _SETTINGS.plain_dro  # plain Group DRO on the proxy NLL, no reference (paper Table 1)


@dataclass(frozen=True)
class ExportSection:
    floor: float = _SETTINGS.export_floor  # minimum share per domain in mixture.json (RT-X release: 0.01)


@dataclass(frozen=True)
class WeightsCommand:
    """remix-weights' settings; `settings()` regroups them into the library's WeightsSettings."""

    out: str = "runs/remix-weights"  # run directory (weights.json, CSV logs, plots/, mixture.json)
    overwrite: bool = _SETTINGS.overwrite  # replace a finished (or interrupted) run in `out`
    resume: bool = _SETTINGS.resume  # continue an interrupted run in `out` from its last checkpoint
    seed: int = _SETTINGS.seed
    device: str = _SETTINGS.device  # auto | cpu | cuda | cuda:N (one GPU per rank under torchrun)
    batch_size: int = _STAGE.batch_size  # global batch (split across ranks)
    log_every: int = _STAGE.log_every
    data: DataSection = field(default_factory=DataSection)
    actions: ActionSettings = field(default_factory=ActionSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    optim: OptimConfig = field(default_factory=OptimConfig)
    reference: ReferenceSection = field(default_factory=ReferenceSection)
    dro: DroSection = field(default_factory=DroSection)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    export: ExportSection = field(default_factory=ExportSection)

    def settings(self) -> WeightsSettings:
        if not self.out:
            raise ConfigError("out= is empty; give a run directory, e.g. out=runs/weights")
        d, r, g = self.data, self.reference, self.dro
        stage = StageConfig(steps=r.steps, batch_size=self.batch_size, log_every=self.log_every,
                            num_workers=d.num_workers, optim=self.optim)
        return WeightsSettings(
            out=Path(self.out),
            data=DataSettings(paths=d.paths, domain_key=d.domain_key, val_fraction=d.val_fraction, in_memory=d.in_memory,
                              num_workers=d.num_workers, max_memory_gb=d.max_memory_gb,
                              builtin_image_size=d.builtin.image_size, builtin_episode_length=d.builtin.episode_length,
                              builtin_episodes_scale=d.builtin.episodes_scale),
            actions=self.actions,
            model=self.model,
            reference=ReferenceConfig(stage=stage, **{f.name: getattr(r, f.name) for f in fields(ReferenceConfig)
                                                      if f.name != "stage"}),
            dro=DROConfig(**{f.name: getattr(g, f.name) for f in fields(DROConfig)}),
            dro_steps=g.steps, dro_checkpoint_every=g.checkpoint_every, cache_reference=g.cache_reference,
            plain_dro=g.plain, features=self.features, keep_checkpoints=r.keep_checkpoints,
            export_floor=self.export.floor, seed=self.seed, device=self.device, overwrite=self.overwrite,
            resume=self.resume,
        )


register("weights_schema", WeightsCommand)


def settings_from_config(cfg: DictConfig) -> WeightsSettings:
    """Typed settings from the composed hydra config (values checked by the dataclasses)."""
    return build(WeightsCommand, cfg).settings()


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


@dataclass(frozen=True)
class SubsetData:
    paths: tuple[str, ...] = ()  # source stores; () = the ones recorded in weights.json


@dataclass(frozen=True)
class SubsetCommand:
    """remix-subset's settings."""

    weights: str | None = None  # weights.json from remix-weights (or its run directory)
    fraction: float = 0.25  # share of all steps to keep (paper: 0.25 or 0.10)
    out: str | None = None  # directory for the subset stores + subset.json
    seed: int = 0  # which episodes are kept (reproducible)
    overwrite: bool = False
    data: SubsetData = field(default_factory=SubsetData)


register("subset_schema", SubsetCommand)


@hydra_main("subset", positional=("weights",))
def subset_main(cfg: DictConfig) -> int:
    """remix-subset: keep `fraction` of the data, whole episodes, water-filled by the Re-Mix weights."""
    from remix.core.subset import run_subset

    command = build(SubsetCommand, cfg)
    run_subset(weights=command.weights, fraction=command.fraction, out=command.out, seed=command.seed,
               overwrite=command.overwrite, paths=list(command.data.paths) or None)
    return 0


if __name__ == "__main__":  # torchrun -m remix.core.cli ...
    weights_main()
