"""Console script `remix-select`: the typed `SelectSettings` (remix/select/config.py) is the hydra
schema `select_schema`; configs/select.yaml picks it and configs/select/*.yaml hold presets."""

from __future__ import annotations

from omegaconf import DictConfig

from remix.common.cli import hydra_main
from remix.common.config import build, register
from remix.select.config import SelectSettings

register("select_schema", SelectSettings)


@hydra_main("select")
def select_main(cfg: DictConfig) -> int:
    """remix-select target=[demos.zarr] data.paths=[a.zarr,...] budget=0.25 method=datamil|retrieval|random|all out=DIR

    Scores every cluster of the prior data by how much it lowers the held-out target demos' BC loss
    (score > 0 helps, < 0 hurts), keeps the best ones up to the budget and writes them like
    remix-subset: train with `remix-train RUN data.subset=DIR data.cotrain=[demos.zarr]`.
    Presets: select=small (CI: 16 k-means clusters, 24 short proxy runs). Settings: remix/select/config.py.
    """
    from remix.select.run import run_select

    run_select(build(SelectSettings, cfg))
    return 0
