"""Console script `remix-select` (configs/select.yaml; presets select=default|small)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from remix.common.cli import as_str_list, hydra_main, to_plain
from remix.common.errors import ConfigError
from remix.select.config import ClusterSettings, DatamilSettings, ProxySettings, SelectSettings


def _section(cls: type, node: object, key: str) -> object:
    values = to_plain(node)
    if not isinstance(values, dict):
        raise ConfigError(f"{key} must be a mapping of settings")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"bad {key} settings ({error}); run remix-select --help") from None


def settings_from_config(cfg: DictConfig) -> SelectSettings:
    """Typed settings from the composed config (ranges are checked by the dataclasses)."""
    if not cfg.out:
        raise ConfigError("out= is empty; give a directory for the selection, e.g. out=runs/select")
    m = cfg.model
    try:
        return SelectSettings(
            out=Path(str(cfg.out)),
            target=tuple(as_str_list(cfg.target, "target")),
            paths=tuple(as_str_list(cfg.data.paths, "data.paths")),
            domain_key=cfg.data.domain_key,
            budget=float(cfg.budget),
            method=str(cfg.method),
            weights=str(cfg.weights) if cfg.weights else None,
            heldout=float(cfg.heldout),
            n_obs=int(m.n_obs),
            horizon=int(m.horizon),
            use_state=bool(m.use_state),
            cameras=tuple(as_str_list(m.cameras, "model.cameras")),
            encoder=str(m.encoder),
            retrieval=str(cfg.retrieval),
            cluster=_section(ClusterSettings, cfg.cluster, "cluster"),  # type: ignore[arg-type]
            proxy=_section(ProxySettings, cfg.proxy, "proxy"),  # type: ignore[arg-type]
            datamil=_section(DatamilSettings, cfg.datamil, "datamil"),  # type: ignore[arg-type]
            report_clusters=int(cfg.report_clusters),
            builtin_episodes_scale=int(cfg.data.builtin.episodes_scale),
            seed=int(cfg.seed),
            device=str(cfg.device),
            threads=int(cfg.threads),
            overwrite=bool(cfg.overwrite),
        )
    except (TypeError, ValueError) as error:
        raise ConfigError(f"bad config value ({error}); check the key=value overrides") from None


@hydra_main("select")
def select_main(cfg: DictConfig) -> int:
    """remix-select target=[demos.zarr] data.paths=[a.zarr,...] budget=0.25 method=datamil|retrieval|random|all out=DIR

    Scores every cluster of the prior data by how much it lowers the held-out target demos' BC loss
    (score > 0 helps, < 0 hurts), keeps the best ones up to the budget and writes them like
    remix-subset: train with `remix-train RUN data.subset=DIR data.cotrain=[demos.zarr]`.
    """
    from remix.select.run import run_select

    run_select(settings_from_config(cfg))
    return 0
