"""`remix-weights` end to end: domains -> preprocessing -> reference -> Group DRO -> run directory.

Run directory (`out`):
    config.yaml             the composed config
    normalization.json      per-domain action statistics, bins (needed to decode actions later)
    reference_eval.csv      per-domain train/val NLL at every evaluation (written as it goes)
    reference_loss.csv      reference training loss
    reference/step_*.pt     the chosen reference checkpoint (all of them with keep_checkpoints)
    dro_log.csv             alpha, its average, excess and score per domain over DRO steps
    weights.json            domains, weights (time-averaged alpha), size_weights, reference step + reason
    mixture.json            Octo/OpenVLA-style (name, weight) lists
    plots/*.png             alpha, excess, reference curves with the chosen step, weights vs size

Stages (each a function below; an interrupted run resumes from `reference/state.pt`, `dro/state.pt`):
    data_stage        domains -> PreparedData, in-memory tensors, policy shape
    reference_stage   train the reference, choose its checkpoint, flag unlearnable domains
    dro_stage         Group DRO of a fresh proxy against the reference's NLL
    output_stage      weights.json, mixture.json, CSVs, plots, the printed table
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from remix.common.atomic import write_json_atomic
from remix.common.cli import prepare_out_dir
from remix.common.errors import ConfigError, RemixError
from remix.core import plots
from remix.core.actions import MAX_BINS
from remix.core.dataset import (
    Batch,
    BatchStream,
    PreparedData,
    WindowSpec,
    prepare_data,
)
from remix.core.distributed import DistInfo, barrier, init_distributed
from remix.core.dro import DROConfig, GroupDRO
from remix.core.features import (
    FeatureSettings,
    ImageNetFrames,
    encode_windows,
    imagenet_weights_path,
    reference_encoder,
    resolve_mode,
)
from remix.core.model import DiscretePolicy, PolicyConfig
from remix.core.train import (
    DROResult,
    DROTrainer,
    ReferenceConfig,
    ReferenceResult,
    reference_nll_cache,
    train_reference,
)
from remix.data.domains import DomainSource, discover_domains, split_domains
from remix.data.mixture import normalize_weights, size_weights

WEIGHTS_FILE = "weights.json"


@dataclass(frozen=True)
class DataSettings:
    paths: tuple[str, ...] = ()
    domain_key: str | None = None
    val_fraction: float = 0.1
    in_memory: bool = True
    num_workers: int = 0
    max_memory_gb: float = 8.0
    builtin_image_size: int = 0
    builtin_episode_length: int = 25
    builtin_episodes_scale: int = 1

    def __post_init__(self) -> None:
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers={self.num_workers} must be >= 0 (0 = read in the main process)")
        if not 0 <= self.builtin_image_size <= 512:
            raise ConfigError(f"data.builtin.image_size={self.builtin_image_size} must be in 0..512")


@dataclass(frozen=True)
class ActionSettings:
    normalization: str = "gaussian"
    normalize_gripper: bool = False
    bins: str = "gaussian"
    n_bins: int = 100
    continuous: bool = False  # ablation (paper Fig. 4): regress normalized actions (L2) instead of bins

    def __post_init__(self) -> None:
        if not 2 <= self.n_bins <= MAX_BINS:  # 10^9 bins was OOM-killed at 21.8 GB
            raise ConfigError(f"actions.n_bins={self.n_bins} must be in 2..{MAX_BINS}")


@dataclass(frozen=True)
class ModelSettings:
    n_obs: int = 2
    horizon: int = 1
    use_state: bool = True
    cameras: tuple[str, ...] = ()
    encoder: str = "resnet50"
    use_goal: bool = True
    state_hidden: int = 128
    hidden_dims: tuple[int, ...] = (512, 512, 512)
    dropout: float = 0.0


@dataclass(frozen=True)
class WeightsSettings:
    """Everything `remix-weights` needs (built from configs/weights.yaml)."""

    out: Path
    data: DataSettings = field(default_factory=DataSettings)
    actions: ActionSettings = field(default_factory=ActionSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    dro: DROConfig = field(default_factory=DROConfig)
    dro_steps: int | None = None  # None: as many steps as the reference ran
    dro_checkpoint_every: int | None = None  # DRO-stage checkpoint cadence; None: reference.eval_every
    cache_reference: bool = True
    plain_dro: bool = False  # paper Table 1: Group DRO on the proxy's own NLL, no reference
    features: FeatureSettings = field(default_factory=FeatureSettings)  # frozen-feature mode (features.py)
    keep_checkpoints: bool = False
    export_floor: float = 0.0
    seed: int = 0
    device: str = "auto"
    overwrite: bool = False
    resume: bool = False  # continue an interrupted run in `out` from its last checkpoint

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed={self.seed} must be in 0..{2**32 - 1}")


@dataclass(frozen=True)
class WeightsResult:
    run_dir: Path
    domains: list[str]
    weights: dict[str, float]
    size_weights: dict[str, float]
    reference_step: int
    reference_reason: str
    dro_steps: int
    unlearnable: tuple[str, ...] = ()


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def mixture_export(
    weights: Mapping[str, float], sizes: Mapping[str, float], floor: float = 0.0
) -> dict[str, Any]:
    """(name, weight) lists for Octo/OpenVLA-style mixture configs.

    `weights`: sampling probabilities (use with balance_weights=False). `multipliers`: weight / size
    share, scaled so the largest is 1.0, the form of OXE_NAMED_MIXES (use with balance_weights=True,
    which multiplies by dataset size). `floor` raises every weight to at least that share first
    (the RT-X release floors at 0.01).
    """
    names = list(weights)
    w = np.array([weights[n] for n in names], dtype=np.float64)
    if floor > 0:
        if floor * len(names) >= 1:
            raise ConfigError(
                f"export.floor={floor} is too large for {len(names)} domains; use < {1 / len(names):.3f}"
            )
        w = normalize_weights(np.maximum(w, floor))
        # renormalizing can push a floored weight back under the floor; solve exactly instead
        low = w <= floor
        for _ in range(len(names)):
            rest = 1.0 - floor * low.sum()
            w = np.where(low, floor, w * rest / w[~low].sum())
            if not np.any(w[~low] < floor):
                break
            low |= w < floor
    s = np.array([sizes[n] for n in names], dtype=np.float64)
    mult = w / s
    mult = mult / mult.max()
    return {
        "weights": [[n, round(float(x), 6)] for n, x in zip(names, w)],
        "multipliers": [[n, round(float(x), 6)] for n, x in zip(names, mult)],
        "floor": floor,
        "usage": "weights: sample_weights with balance_weights=False; multipliers: OXE_NAMED_MIXES-style, balance_weights=True",
    }


def print_weight_table(
    weights: Mapping[str, float], sizes: Mapping[str, float], console: Console | None = None
) -> None:
    table = Table(title="Re-Mix domain weights")
    table.add_column("domain")
    table.add_column("size %", justify="right")
    table.add_column("Re-Mix %", justify="right")
    table.add_column("ratio", justify="right")
    for name in weights:
        ratio = weights[name] / sizes[name] if sizes[name] > 0 else float("inf")
        table.add_row(name, f"{100 * sizes[name]:.2f}", f"{100 * weights[name]:.2f}", f"{ratio:.2f}x")
    (console or Console()).print(table)


RUN_SETTINGS_FILE = "run_settings.json"  # written at the start: marks a run that can be resumed
REFERENCE_STATE = Path("reference") / "state.pt"
REFERENCE_RESULT = Path("reference") / "result.json"
DRO_STATE = Path("dro") / "state.pt"


@dataclass
class RunData:
    """What the data stage hands the others."""

    domains: list[DomainSource]
    data: PreparedData
    sizes: dict[str, float]  # size share of every domain (alpha0)
    train_tensors: Batch | None  # None: read lazily
    val_tensors: Batch | None
    policy_config: PolicyConfig

    @property
    def names(self) -> list[str]:
        return self.data.names


@dataclass
class ReferenceOutcome:
    """The frozen reference (None for plain DRO) and what weights.json reports about it."""

    model: DiscretePolicy | None
    info: dict[str, Any]
    unlearnable: tuple[str, ...] = ()


@dataclass
class DROOutcome:
    result: DROResult
    steps: int
    cached_reference: bool
    features: str = "off"  # the frozen-feature mode the proxy ran in


def _builtin_paths(settings: WeightsSettings, dist_info: DistInfo) -> list[Path]:
    from remix.data.synthetic import DEFAULT_DOMAINS, make_synthetic_dataset

    root = settings.out / "builtin-data"
    scale = settings.data.builtin_episodes_scale
    if scale < 1:
        raise ConfigError(f"data.builtin.episodes_scale must be >= 1, got {scale}")
    domains = [replace(d, num_episodes=d.num_episodes * scale) for d in DEFAULT_DOMAINS]
    paths = [root / f"{d.name}.zarr" for d in domains]
    if dist_info.is_main:
        make_synthetic_dataset(
            root,
            domains,
            seed=settings.seed,
            image_size=settings.data.builtin_image_size,
            episode_length=settings.data.builtin_episode_length,
        )
    barrier()
    return paths


def _check_memory(data: PreparedData, limit_gb: float) -> None:
    """Refuse to stack a dataset into memory that will not fit (estimated from one window)."""
    item = data.train[0]
    per_window = sum(v.element_size() * v.numel() for v in item.values())
    need_gb = per_window * (len(data.train) + len(data.val)) / 1e9
    if need_gb > limit_gb:
        raise ConfigError(
            f"holding all {len(data.train) + len(data.val)} windows in memory needs ~{need_gb:.1f} GB "
            f"(> data.max_memory_gb={limit_gb}); set data.in_memory=false to read them lazily"
        )


def _policy_config(settings: WeightsSettings, data: PreparedData) -> PolicyConfig:
    m = settings.model
    return PolicyConfig(
        action_dim=data.action_dim,
        n_bins=settings.actions.n_bins,
        horizon=m.horizon,
        n_obs=m.n_obs,
        state_dim=data.state_dim if m.use_state else 0,
        cameras=tuple(m.cameras),
        encoder=m.encoder,
        use_goal=m.use_goal,
        state_hidden=m.state_hidden,
        hidden_dims=tuple(m.hidden_dims),
        dropout=m.dropout,
        continuous=settings.actions.continuous,
    )


def _new_policy(config: PolicyConfig, data: PreparedData, seed: int, device: torch.device) -> DiscretePolicy:
    torch.manual_seed(seed)
    policy = DiscretePolicy(config)
    if config.state_dim > 0:
        policy.set_state_statistics(data.state_mean, data.state_std)
    return policy.to(device)


def _settings_fingerprint(settings: WeightsSettings) -> dict[str, Any]:
    """The settings that decide the result (a resumed run must use the same ones)."""
    raw = asdict(settings)
    for key in ("out", "overwrite", "resume", "device"):
        raw.pop(key)
    return json.loads(json.dumps(raw, default=str))


def _differences(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return found


def prepare_run_dir(settings: WeightsSettings, dist_info: DistInfo) -> bool:
    """Check `out` and decide whether this run resumes an interrupted one (returned)."""
    out = settings.out
    resuming = False
    if dist_info.is_main:
        prepare_out_dir(out, "the run", holds=(WEIGHTS_FILE, "a finished run"), overwrite=settings.overwrite,
                        create=False)
        finished = (out / WEIGHTS_FILE).exists()
        interrupted = not finished and (out / RUN_SETTINGS_FILE).exists()
        if interrupted and not (settings.resume or settings.overwrite):
            raise ConfigError(
                f"{out} holds an interrupted run; pass resume=true to continue it from its last checkpoint "
                "or overwrite=true to start over"
            )
        fingerprint = _settings_fingerprint(settings)
        resuming = interrupted and settings.resume
        if resuming:
            changed = _differences(json.loads((out / RUN_SETTINGS_FILE).read_text()), fingerprint)
            if changed:
                raise ConfigError(
                    f"resume=true with other settings than the interrupted run ({'; '.join(changed[:3])}); "
                    "use the same ones, or overwrite=true to start over"
                )
        else:
            for stale in (out / "reference", out / "dro", out / WEIGHTS_FILE):
                if stale.is_dir():
                    shutil.rmtree(stale)
                elif stale.exists():
                    stale.unlink()
        prepare_out_dir(out, "the run")
        for part in ("plots", "dro"):
            prepare_out_dir(out / part, "the run's plots and DRO state")
        write_json_atomic(out / RUN_SETTINGS_FILE, fingerprint)
    barrier()
    return resuming


def check_validation_split(settings: WeightsSettings, domains: Sequence[DomainSource]) -> None:
    """Refuse a run whose reference stage could not choose a checkpoint: no domain holds out an episode.

    The reference is taken at the latest checkpoint that has not overfit on any domain, judged by
    each domain's held-out NLL (remix-algorithm.md, stage 2); domains without validation episodes are
    only left out of that judgement. With none at all there is nothing to judge by, and a reference past
    its early-stopping point makes worse weights (paper Fig. 4), so this is an error, not a silent
    "last checkpoint". Plain Group DRO trains no reference and needs no validation episodes.
    """
    if settings.plain_dro:
        return
    splits = split_domains(domains, settings.data.val_fraction, settings.seed)
    if any(len(val) for _, val in splits):
        return
    counts = sorted({len(d.episodes) for d in domains})
    if settings.data.val_fraction <= 0:
        fix = "set data.val_fraction in (0, 1), e.g. 0.1"
    else:  # split_episodes holds one out of any domain with 2+ episodes
        fix = "give at least one domain 2+ episodes (add episodes or a coarser data.domain_key)"
    raise ConfigError(
        f"no domain has a validation episode (episodes per domain: {counts}, data.val_fraction="
        f"{settings.data.val_fraction}), so the reference cannot be early-stopped; {fix}, or set dro.plain=true"
    )


def data_stage(settings: WeightsSettings, dist_info: DistInfo, console: Console) -> RunData:
    """Stage 1: resolve domains, split and preprocess them, stack small data into memory."""
    paths = list(settings.data.paths) or _builtin_paths(settings, dist_info)
    domains = discover_domains(paths, settings.data.domain_key, min_domains=2)
    check_validation_split(settings, domains)
    m, a = settings.model, settings.actions
    data = prepare_data(
        domains,
        WindowSpec(m.n_obs, m.horizon, m.use_state, tuple(m.cameras), a.continuous),
        a.normalization,
        a.normalize_gripper,
        a.bins,
        a.n_bins,
        settings.data.val_fraction,
        settings.seed,
    )
    names = data.names
    sizes = dict(zip(names, size_weights([d.num_steps for d in domains]).tolist()))
    if dist_info.is_main:
        console.print(
            f"[bold]Re-Mix[/bold] {len(names)} domains, {len(data.train)} train / {len(data.val)} val windows, "
            f"device {dist_info.device}, world size {dist_info.world_size}"
        )
        write_json_atomic(
            settings.out / "normalization.json", {**data.normalizer.to_dict(), "bins": asdict(data.binner)}
        )
        no_val = [n for n, size in zip(names, data.val.domain_sizes) if size == 0]
        if no_val:
            console.print(
                f"[yellow]warning:[/yellow] domains {no_val} have no validation episodes (too few episodes); "
                "early stopping ignores them. Raise data.val_fraction or add episodes."
            )
    train_tensors = val_tensors = None
    if settings.data.in_memory:
        _check_memory(data, settings.data.max_memory_gb)
        train_tensors = {k: v.to(dist_info.device) for k, v in data.train.materialize().items()}
        val_tensors = data.val.materialize() if len(data.val) else None  # none: plain DRO needs no val
    run = RunData(domains, data, sizes, train_tensors, val_tensors, _policy_config(settings, data))
    if settings.features.reference_head and _feature_mode(settings) == "imagenet":
        weights = imagenet_weights_path(settings.features.weights)
        assert weights is not None
        encoder = ImageNetFrames(weights, tuple(m.cameras), m.use_goal).to(dist_info.device)
        run = with_features(run, encoder, settings, dist_info, include_val=True)
    return run


def _feature_mode(settings: WeightsSettings) -> str:
    if settings.features.mode != "off" and not settings.model.cameras:
        raise ConfigError(
            f"features.mode={settings.features.mode} needs images; set model.cameras or features.mode=off"
        )
    return resolve_mode(settings.features)


def with_features(
    run: RunData,
    encoder: Callable[[Batch], torch.Tensor],
    settings: WeightsSettings,
    dist_info: DistInfo,
    include_val: bool,
) -> RunData:
    """The run with every window's images replaced by frozen features (encoded once) and a head-only policy."""
    size, workers, device = settings.features.batch_size, settings.data.num_workers, dist_info.device
    train = encode_windows(run.data.train, run.train_tensors, encoder, size, device, workers)
    val = (
        encode_windows(run.data.val, run.val_tensors, encoder, size, device, workers) if include_val else None
    )
    head = replace(run.policy_config, cameras=(), feature_dim=int(train["features"].shape[1]))
    return replace(run, train_tensors=train, val_tensors=val, policy_config=head)


def batch_stream(settings: WeightsSettings, run: RunData, dist_info: DistInfo, seed: int) -> BatchStream:
    """The size-proportional stream of training batches both stages draw from (per rank under DDP)."""
    batch_size = settings.reference.stage.batch_size
    if dist_info.world_size > 1 and batch_size % dist_info.world_size:
        raise ConfigError(f"batch_size={batch_size} must divide by the {dist_info.world_size} ranks")
    return BatchStream(
        run.data.train,
        normalize_weights(run.data.train.domain_sizes.astype(np.float64)),
        batch_size // dist_info.world_size,
        seed,
        tensors=run.train_tensors,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
        num_workers=settings.data.num_workers,
    )


def _write_eval_log(
    path: Path, steps: Sequence[int], train: Mapping[str, Sequence[float]], val: Mapping[str, Sequence[float]]
) -> None:
    names = list(train)
    lines = ["step,split," + ",".join(names)]
    for k, step in enumerate(steps):
        lines.append(f"{step},train," + ",".join(f"{train[n][k]:.6f}" for n in names))
        lines.append(f"{step},val," + ",".join(f"{val[n][k]:.6f}" for n in names))
    path.write_text("\n".join(lines) + "\n")


def unlearnable_report(result: ReferenceResult, marginals: Mapping[str, float]) -> dict[str, Any]:
    """Per unlearnable domain: its starting value and its curves (for weights.json)."""
    return {
        name: {
            "marginal_nll": marginals[name],
            "best_val_nll": float(np.nanmin(result.val_nll[name])),
            "steps": result.eval_steps,
            "train_nll": result.train_nll[name],
            "val_nll": result.val_nll[name],
        }
        for name in result.selection.unlearnable
    }


def _train_reference(
    settings: WeightsSettings, run: RunData, dist_info: DistInfo, console: Console
) -> dict[str, Any]:
    """Train the reference (resuming from its state file if there is one); returns weights.json's info."""
    out, names, main = settings.out, run.names, dist_info.is_main
    eval_log = out / "reference_eval.csv"
    if main and not (out / REFERENCE_STATE).exists():
        eval_log.write_text("step,split," + ",".join(names) + "\n")

    def on_eval(step: int, train_nll: Mapping[str, float], val_nll: Mapping[str, float]) -> None:
        if main:
            with open(eval_log, "a") as f:
                f.write(f"{step},train," + ",".join(f"{train_nll[n]:.6f}" for n in names) + "\n")
                f.write(f"{step},val," + ",".join(f"{val_nll[n]:.6f}" for n in names) + "\n")

    reference = _new_policy(run.policy_config, run.data, settings.seed, dist_info.device)
    result: ReferenceResult = train_reference(
        reference,
        batch_stream(settings, run, dist_info, settings.seed),
        (run.data.train, run.train_tensors),
        (run.data.val, run.val_tensors),
        settings.reference,
        out / "reference",
        dist_info,
        seed=settings.seed,
        on_eval=on_eval,
        baselines=run.data.marginal_nll,
        state_path=out / REFERENCE_STATE,
    )
    selection = result.selection
    info = {
        "step": selection.step,
        "reason": selection.reason,
        "steps_run": result.steps_run,
        "overfit_onsets": selection.onsets,
        "checkpoint": str(result.checkpoint.relative_to(out)),
        "min_gain": settings.reference.min_gain,
        "marginal_nll": run.data.marginal_nll,
        "unlearnable": unlearnable_report(result, run.data.marginal_nll),
    }
    if main:
        console.print(f"reference: ran {result.steps_run} steps; {selection.reason}")
        _write_eval_log(eval_log, result.eval_steps, result.train_nll, result.val_nll)
        _write_csv(out / "reference_loss.csv", result.loss_log)
        plots.plot_reference(
            result.eval_steps,
            result.train_nll,
            result.val_nll,
            selection.step,
            out / "plots" / "reference.png",
        )
        if not settings.keep_checkpoints:
            for checkpoint in (out / "reference").glob("step_*.pt"):
                if checkpoint != result.checkpoint:
                    checkpoint.unlink()
        write_json_atomic(out / REFERENCE_RESULT, info)
        (out / REFERENCE_STATE).unlink(missing_ok=True)
    barrier()
    return info


def reference_stage(
    settings: WeightsSettings, run: RunData, dist_info: DistInfo, console: Console
) -> ReferenceOutcome:
    """Stage 2: the reference at its chosen checkpoint (trained now, or as a finished earlier stage left it)."""
    if settings.plain_dro:
        info = {
            "step": 0,
            "reason": "plain Group DRO (dro.plain=true): no reference model, the excess is the proxy NLL",
            "steps_run": 0,
        }
        return ReferenceOutcome(None, info)
    done = settings.out / REFERENCE_RESULT
    if done.exists():
        info = json.loads(done.read_text())
        if dist_info.is_main:
            console.print(f"reference: resumed after the finished reference stage; {info['reason']}")
    else:
        info = _train_reference(settings, run, dist_info, console)
    reference = _new_policy(run.policy_config, run.data, settings.seed, dist_info.device)
    checkpoint = settings.out / info["checkpoint"]
    reference.load_state_dict(torch.load(checkpoint, map_location=dist_info.device, weights_only=True))
    reference.eval().requires_grad_(False)
    return ReferenceOutcome(reference, info, tuple(info.get("unlearnable", {})))


def _frozen_encoder(
    mode: str, settings: WeightsSettings, run: RunData, reference: ReferenceOutcome, device: torch.device
) -> Callable[[Batch], torch.Tensor]:
    """The frozen encoder of the DRO proxy's features: ImageNet ResNet-18 or the reference's own."""
    if mode == "imagenet":
        weights = imagenet_weights_path(settings.features.weights)
        assert weights is not None  # resolve_mode checked it
        config = run.policy_config
        return ImageNetFrames(weights, config.cameras, config.use_goal).to(device)
    if reference.model is None:
        raise ConfigError(
            "features.mode=reference needs a reference model; it does not work with dro.plain=true"
        )
    return reference_encoder(reference.model)


def dro_stage(
    settings: WeightsSettings, run: RunData, reference: ReferenceOutcome, dist_info: DistInfo
) -> DROOutcome:
    """Stage 3: a fresh proxy under Group DRO on its excess NLL over the reference (checkpointed)."""
    names = run.names
    device = dist_info.device
    cache = None
    mode = _feature_mode(settings)
    on_features = mode != "off" and run.policy_config.feature_dim == 0  # the proxy alone on features
    if reference.model is None:  # plain Group DRO: the excess is the proxy's own NLL
        cache = torch.zeros(len(run.data.train), device=device)
        steps = settings.dro_steps or settings.reference.stage.steps
    else:
        steps = settings.dro_steps or int(reference.info["steps_run"])
        if settings.cache_reference or on_features:  # a head-only proxy batch has no images to forward
            cache = reference_nll_cache(
                reference.model,
                run.data.train,
                run.train_tensors,
                settings.reference.stage.batch_size * 4,
                device,
                settings.data.num_workers,
            )
    if on_features:
        encoder = _frozen_encoder(mode, settings, run, reference, device)
        run = with_features(run, encoder, settings, dist_info, include_val=False)
    dro = GroupDRO([run.sizes[n] for n in names], settings.dro, [n in reference.unlearnable for n in names])
    proxy = _new_policy(run.policy_config, run.data, settings.seed + 1, device)
    trainer = DROTrainer(
        proxy,
        dro,
        names,
        settings.reference.stage,
        dist_info,
        reference=None if cache is not None else reference.model,
        cache=cache,
    )
    result = trainer.run(
        batch_stream(settings, run, dist_info, settings.seed + 1000),
        steps,
        state_path=settings.out / DRO_STATE,
        checkpoint_every=settings.dro_checkpoint_every or settings.reference.eval_every,
    )
    return DROOutcome(result, steps, cache is not None and reference.model is not None, mode)


def output_stage(
    settings: WeightsSettings,
    run: RunData,
    reference: ReferenceOutcome,
    dro: DROOutcome,
    console: Console,
) -> None:
    """Stage 4 (rank 0): weights.json last, so that its presence means a finished run."""
    out, names, sizes = settings.out, run.names, run.sizes
    weights = dro.result.weights
    _write_csv(out / "dro_log.csv", dro.result.log)
    plots.plot_alpha(dro.result.log, names, out / "plots" / "alpha.png")
    plots.plot_excess(dro.result.log, names, out / "plots" / "excess.png")
    plots.plot_weights(weights, sizes, out / "plots" / "weights.png")
    write_json_atomic(out / "mixture.json", mixture_export(weights, sizes, settings.export_floor))
    write_json_atomic(
        out / WEIGHTS_FILE,
        {
            "domains": names,
            "weights": weights,
            "size_weights": sizes,
            "final_alpha": dro.result.final_alpha,
            "reference": reference.info,
            "dro": {
                **asdict(settings.dro),
                "steps": dro.steps,
                "cached_reference_nll": dro.cached_reference,
                "plain": settings.plain_dro,
                "features": dro.features,
                "seconds_per_step": dro.result.seconds / max(dro.steps, 1),
            },
            "sources": [
                {
                    "name": d.name,
                    "path": str(Path(d.path).resolve()),
                    "episodes": len(d.episodes),
                    "steps": d.num_steps,
                }
                for d in run.domains
            ],
            "domain_key": settings.data.domain_key,
        },
    )
    (out / DRO_STATE).unlink(missing_ok=True)
    print_weight_table(weights, sizes, console)
    console.print(f"run directory: {out}")


def run_weights(
    settings: WeightsSettings, config_yaml: str | None = None, console: Console | None = None
) -> WeightsResult:
    """The whole pipeline; returns the weights and writes the run directory (rank 0).

    An interrupted run (killed in any stage) continues from its last checkpoint with resume=true and
    ends with the same weights as an uninterrupted run with the same settings.
    """
    console = console or Console()
    _feature_mode(settings)  # a features setting that cannot work fails before any training
    if settings.data.paths:  # bad domains fail before `out` is marked as a run to resume
        check_validation_split(settings, discover_domains(settings.data.paths, settings.data.domain_key, min_domains=2))
    dist_info = init_distributed(settings.device)
    resuming = prepare_run_dir(settings, dist_info)
    if dist_info.is_main:
        if resuming:
            console.print(f"resuming the interrupted run in {settings.out}")
        if config_yaml is not None:
            (settings.out / "config.yaml").write_text(config_yaml)
    run = data_stage(settings, dist_info, console)
    reference = reference_stage(settings, run, dist_info, console)
    barrier()
    dro = dro_stage(settings, run, reference, dist_info)
    if dist_info.is_main:
        output_stage(settings, run, reference, dro, console)
    barrier()
    return WeightsResult(
        settings.out,
        run.names,
        dro.result.weights,
        run.sizes,
        int(reference.info["step"]),
        str(reference.info["reason"]),
        dro.steps,
        reference.unlearnable,
    )


def load_weights(path: str | Path) -> dict[str, Any]:
    """Read a weights.json (or the run directory holding one) and check it is usable."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.exists():
        raise RemixError(f"no weights file at {path}; run remix-weights first or fix weights=")
    try:
        data = json.loads(path.read_text())
        names = list(data["domains"])
        weights = {n: float(data["weights"][n]) for n in names}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise RemixError(
            f"{path} is not a valid weights.json ({error.__class__.__name__}: {error}); re-run remix-weights"
        ) from None
    normalize_weights([weights[n] for n in names], len(names))
    return data
