"""Typed settings of `remix-select` (the single source of defaults; configs/select.yaml mirrors them).

Every field carries its default and why it is there; the CLI builds these from the composed hydra
config, and the dataclasses check ranges so that a bad value is one `error:` line, not a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from remix.common.errors import ConfigError

METHODS = ("datamil", "retrieval", "random", "all")
ESTIMATORS = ("regression", "first_order", "both")
UNITS = ("episode", "segment")


@dataclass(frozen=True)
class ClusterSettings:
    """What one selectable cluster of prior data is."""

    unit: str = "episode"  # episode | segment: the smallest piece that can be kept
    segment_steps: int = 10  # steps per segment when unit=segment
    kmeans: int = 0  # 0: every unit is its own cluster; k > 0: k-means on the units' state-action embeddings

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ConfigError(f"cluster.unit={self.unit!r} is not one of {UNITS}")
        if self.segment_steps < 2 or self.kmeans < 0:
            raise ConfigError("cluster.segment_steps must be >= 2 and cluster.kmeans >= 0")


@dataclass(frozen=True)
class ProxySettings:
    """The small discrete policy of the Re-Mix core, trained many times; the target metric is its
    mean NLL on the held-out target demos (DataMIL's rollout-free proxy for success)."""

    steps: int = 400  # optimizer steps per proxy training
    batch_size: int = 128
    target_share: float = 0.5  # share of every batch drawn from the target's training demos (co-training)
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    hidden_dims: tuple[int, ...] = (128, 128)
    state_hidden: int = 64
    n_bins: int = 32
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2 or not 0 < self.target_share < 1:
            raise ConfigError("proxy.steps >= 1, proxy.batch_size >= 2 and 0 < proxy.target_share < 1 are required")


@dataclass(frozen=True)
class DatamilSettings:
    """The datamodel estimators (see remix/select/estimators.py for their cost)."""

    estimator: str = "both"  # regression | first_order | both (select by regression, report the rank correlation)
    runs: int = 64  # regression: proxy trainings on random subsets
    inclusion: float = 0.5  # regression: chance that a cluster is in a run's subset
    ridge: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)  # ridge strengths tried; leave-one-out picks one
    checkpoints: int = 8  # first_order: points along the proxy run where gradients are compared
    max_windows: int = 64  # first_order: windows per cluster in its gradient
    min_score: float = 0.0  # clusters scoring at or below this are never selected, even if the budget is not met
    min_z: float = 1.0  # regression: also require score > min_z x its standard error (not noise)

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"datamil.estimator={self.estimator!r} is not one of {ESTIMATORS}")
        if self.runs < 4 or not 0 < self.inclusion < 1 or self.checkpoints < 1 or self.max_windows < 1:
            raise ConfigError("datamil.runs >= 4, 0 < datamil.inclusion < 1, checkpoints and max_windows >= 1")
        if not self.ridge or min(self.ridge) <= 0:
            raise ConfigError("datamil.ridge must list positive ridge strengths, e.g. [1.0, 10.0]")


@dataclass(frozen=True)
class BuiltinSettings:
    episodes_scale: int = 1  # multiply the built-in prior domains' episode counts

    def __post_init__(self) -> None:
        if self.episodes_scale < 1:
            raise ConfigError(f"data.builtin.episodes_scale must be >= 1, got {self.episodes_scale}")


@dataclass(frozen=True)
class DataSettings:
    paths: tuple[str, ...] = ()  # prior stores; empty (with target empty) = the built-in synthetic data
    domain_key: str | None = None  # per-episode field naming the domain (e.g. scene); None = one per store
    builtin: BuiltinSettings = field(default_factory=BuiltinSettings)


@dataclass(frozen=True)
class ModelSettings:
    """What the proxy sees (the Re-Mix core's discrete policy)."""

    n_obs: int = 1
    horizon: int = 1
    use_state: bool = True
    cameras: tuple[str, ...] = ()  # e.g. ("cam0",): the proxy also sees images (slower); none = state only
    encoder: str = "tiny"  # image encoder for cameras: tiny | resnet18 | resnet34 | resnet50


@dataclass(frozen=True)
class SelectSettings:
    """Everything `remix-select` needs (the hydra schema `select_schema`; configs/select/*.yaml are presets)."""

    out: str = "runs/remix-select"  # selection stores + subset.json, scores.csv, estimators.json, plots/
    target: tuple[str, ...] = ()  # the target task's demo stores (e.g. 25 demos)
    budget: float = 0.25  # share of the prior steps to keep
    method: str = "datamil"  # datamil | retrieval | random | all (the others are printed as comparison rows)
    weights: str | None = None  # a Re-Mix weights.json: remix-subset's choice at the same budget becomes a row
    heldout: float = 0.2  # share of the target demos held out to measure the target loss (at least 1)
    retrieval: str = "state_action"  # retrieval features: state_action | visual (thumbnails of model.cameras[0])
    report_clusters: int = 8  # top and bottom clusters in the table and plot
    seed: int = 0
    device: str = "cpu"  # the proxy is small: cpu is usually fine
    threads: int = 1  # torch CPU threads
    overwrite: bool = False  # replace an earlier selection in out
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    proxy: ProxySettings = field(default_factory=ProxySettings)
    datamil: DatamilSettings = field(default_factory=DatamilSettings)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method={self.method!r} is not one of {METHODS}")
        if not 0 < self.budget <= 1:
            raise ConfigError(f"budget must be in (0, 1] (share of the prior steps), got {self.budget}")
        if not 0 < self.heldout < 1:
            raise ConfigError(f"heldout must be in (0, 1), got {self.heldout}")
        if self.retrieval not in ("state_action", "visual"):
            raise ConfigError(f"retrieval={self.retrieval!r} is not state_action or visual")
        if self.retrieval == "visual" and not self.model.cameras:
            raise ConfigError("retrieval=visual needs a camera; set model.cameras=[cam0]")
        if not self.model.use_state and not self.model.cameras:
            raise ConfigError("the proxy sees nothing: set model.use_state=true or give model.cameras")
        if self.data.paths and not self.target:
            raise ConfigError("target= is missing; give the target task's demo store, e.g. target=[demos.zarr]")
        if self.target and not self.data.paths:
            raise ConfigError("data.paths is empty; give the prior stores to select from, e.g. data.paths=[a.zarr,b.zarr]")
