"""Train the goal-conditioned diffusion policy on a weighted mixture of domains plus co-training data.

One run writes, under its output directory:

    checkpoints/step_XXXXXXXX/   model.safetensors (EMA weights), config.json, train_state.pt (newest only)
    metrics.jsonl                one JSON row per log/validation event
    losses.png                   training and per-domain validation loss curves

Training is reproducible under a seed: the sample stream, the augmentation of every sample and the
diffusion noise of every step are functions of (seed, step), so `resume=true` continues exactly
where the run stopped. Under torchrun every rank draws its own stream, gradients are averaged by
DistributedDataParallel, and only rank 0 validates and writes.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from remix.common.cli import prepare_out_dir
from remix.common.errors import ConfigError, RemixError
from remix.core.distributed import DistInfo, init_distributed
from remix.data import EpisodeStore
from remix.data.mixture import WeightedDomainSampler
from remix.policy.augment import AugmentConfig, apply_augmentation
from remix.policy.checkpoint import (
    TRAIN_STATE_FILE,
    checkpoint_name,
    latest_checkpoint,
    load_checkpoint,
    load_train_state,
    save_checkpoint,
)
from remix.policy.config import ModelConfig
from remix.policy.data import (
    Domain,
    MixtureConfig,
    MixtureDataset,
    SeededStream,
    discover_domains,
    fit_normalization,
    mixture_weights,
)
from remix.policy.model import (
    DiffusionPolicyNet,
    diffusion_loss,
    load_imagenet_weights,
    make_scheduler,
    sample_actions,
)
from remix.policy.normalization import Normalization


@dataclass(frozen=True)
class TrainConfig:
    """Optimization, EMA, validation and checkpoint settings (defaults suit a small CPU run)."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 2e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema: bool = True
    ema_decay: float = 0.999
    num_workers: int = 2  # DataLoader worker processes (0 = load in the training process)
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    val_every: int = 500
    val_batches: int = 4
    save_every: int = 1000
    samples_per_epoch: int = 100_000
    inference_steps: int = 10
    pretrained: str | None = None
    progress: bool = True
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "val_every", "save_every", "samples_per_epoch",
                     "inference_steps", "val_batches"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"train.lr must be a positive number, got {self.lr}")
        if not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"train.ema_decay must be in (0, 1), got {self.ema_decay}")
        if self.num_workers < 0 or self.warmup_steps < 0:
            raise ConfigError("train.num_workers and train.warmup_steps must be >= 0")


class TrainingLoss(nn.Module):
    """Encoder + denoiser + loss in one forward, so DistributedDataParallel sees every parameter."""

    def __init__(self, net: DiffusionPolicyNet, scheduler: Any) -> None:
        super().__init__()
        self.net = net
        self.scheduler = scheduler

    def forward(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        state = batch["state"] if self.net.config.use_state else None
        condition = self.net.encode(batch["images"], batch["goal"], state)
        return diffusion_loss(self.net, self.scheduler, condition, batch["action"], batch["valid"], generator)


def step_generator(seed: int, step: int, rank: int, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(int(np.random.SeedSequence([seed, step, rank, 0xD1FF]).generate_state(1)[0]))
    return generator


def batches(loader: DataLoader, device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    for batch in loader:
        yield {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def ema_weights(net: nn.Module, ema: EMAModel | None) -> dict[str, torch.Tensor]:
    """The weights to deploy: EMA parameters (with the live buffers) when EMA is on."""
    if ema is None:
        return {k: v.detach().clone() for k, v in net.state_dict().items()}
    ema.store(net.parameters())
    ema.copy_to(net.parameters())
    weights = {k: v.detach().clone() for k, v in net.state_dict().items()}
    ema.restore(net.parameters())
    return weights


@torch.no_grad()
def validate(net: DiffusionPolicyNet, dataset: MixtureDataset, config: TrainConfig, device: torch.device,
             loss_scheduler: Any) -> dict[str, float]:
    """Per-domain denoising loss and sampled-action MSE (normalized units) on held-out episodes."""
    if len(dataset) == 0:
        return {}
    net.eval()
    rng = np.random.default_rng(config.seed)
    count = min(len(dataset), config.val_batches * config.batch_size)
    picked = np.sort(rng.choice(len(dataset), size=count, replace=False))
    loader = DataLoader(torch.utils.data.Subset(dataset, picked.tolist()), batch_size=config.batch_size)
    sampler = make_scheduler(net.config, "ddim")
    generator = torch.Generator(device=device).manual_seed(config.seed)
    losses, errors, domains = [], [], []
    for batch in batches(loader, device):
        state = batch["state"] if net.config.use_state else None
        condition = net.encode(batch["images"], batch["goal"], state)
        losses.append(diffusion_loss(net, loss_scheduler, condition, batch["action"], batch["valid"], generator))
        predicted = sample_actions(net, sampler, condition, config.inference_steps, generator)
        mask = batch["valid"].float()[..., None]
        errors.append((((predicted - batch["action"]) ** 2) * mask).sum((1, 2)) / (mask.sum((1, 2)) * predicted.shape[-1]))
        domains.append(batch["domain"])
    loss, error, domain = torch.cat(losses).cpu(), torch.cat(errors).cpu(), torch.cat(domains).cpu()
    metrics = {"val_loss": float(loss.mean()), "val_action_mse": float(error.mean())}
    for index, name in enumerate(dataset.names):
        selected = domain == index
        if selected.any():
            metrics[f"val_loss/{name}"] = float(loss[selected].mean())
            metrics[f"val_action_mse/{name}"] = float(error[selected].mean())
    net.train()
    return metrics


def plot_metrics(metrics_path: Path, out_path: Path) -> None:
    """Training loss and per-domain validation loss against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    train = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    if train:
        left.plot(*zip(*train), label="train loss")
    val = [r for r in rows if "val_loss" in r]
    for key in sorted({k for r in val for k in r if k.startswith("val_loss")}):
        points = [(r["step"], r[key]) for r in val if r.get(key) is not None]
        left.plot(*zip(*points), marker="o", label=key.replace("val_loss", "val"))
    for key in sorted({k for r in val for k in r if k.startswith("val_action_mse")}):
        points = [(r["step"], r[key]) for r in val if r.get(key) is not None]
        right.plot(*zip(*points), marker="o", label=key.replace("val_action_mse", "mse"))
    left.set(xlabel="step", ylabel="denoising MSE", yscale="log", title="diffusion loss")
    right.set(xlabel="step", ylabel="MSE (normalized actions)", title="validation action error (DDIM)")
    for axis in (left, right):
        if axis.lines:
            axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


def _resume_source(resume: bool | str, out: Path) -> Path | None:
    if resume in (False, None, "", "false"):
        return None
    if resume in (True, "true", "latest"):
        found = latest_checkpoint(out)
        if found is None:
            raise RemixError(f"resume=true but {out}/checkpoints has no resumable checkpoint; "
                             "drop resume or point out= at the run to continue")
        return found
    return Path(str(resume)).expanduser()


def _write_metrics(path: Path, row: dict[str, Any]) -> None:
    clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}
    with path.open("a") as handle:
        handle.write(json.dumps(clean) + "\n")


@dataclass
class TrainingRun:
    """One run's live objects, built by `build_run` and advanced stage by stage: `restore_run` (resume),
    `train_step`, `validate_run`, `save_run`. `train` strings the stages together."""

    model_config: ModelConfig
    mixture: MixtureConfig
    config: TrainConfig
    out: Path
    context: DistInfo
    device: torch.device
    normalization: Normalization
    weights: np.ndarray
    train_set: MixtureDataset
    val_set: MixtureDataset
    net: DiffusionPolicyNet
    scheduler: Any
    loss_module: nn.Module
    optimizer: torch.optim.Optimizer
    lr_schedule: Any
    ema: EMAModel | None
    meta: dict[str, Any]
    step: int = 0
    last_checkpoint: Path | None = None
    running: list[float] = field(default_factory=list)

    @property
    def metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"


def check_out_dir(out: Path, resume: bool | str, overwrite: bool) -> tuple[Path | None, bool]:
    """(checkpoint to resume from, whether an old run in `out` is to be replaced); a new run never
    silently replaces an old one.

    The shared `prepare_out_dir` (as remix-weights/subset/select use it) checks that `out` is no file;
    creating it waits for `start_output`, so a run refused for its data leaves no empty directory. The
    "already holds a run" check stays here: its marker is a non-empty checkpoints/ folder, its error
    offers resume=true, and a resumed run skips it, none of which the shared `holds` check does.
    """
    prepare_out_dir(out, "the training run", create=False)
    resume_from = _resume_source(resume, out)
    checkpoints = out / "checkpoints"
    replace_old_run = resume_from is None and checkpoints.is_dir() and any(checkpoints.iterdir())
    if replace_old_run and not overwrite:
        raise ConfigError(f"{out} already holds a training run; pass resume=true to continue it, "
                          "overwrite=true to replace it, or another output directory")
    return resume_from, replace_old_run


def _width(kind: str, given: int | None, widths: Mapping[Path, int]) -> int | None:
    """One width for `kind` over the stores: `given` checked against each of them, else the stores' own."""
    if given is not None:
        for store, width in widths.items():
            if width != given:
                raise ConfigError(f"store {store} has {width}-d {kind}s but model.{kind}_dim={given}; leave "
                                  f"model.{kind}_dim unset to use the stores' width, or convert the store")
        return given
    if len(set(widths.values())) > 1:
        listed = ", ".join(f"{store}: {width}" for store, width in widths.items())
        raise ConfigError(f"the stores' {kind} widths differ ({listed}); train on stores of one {kind} width")
    return next(iter(widths.values()), None)


def resolve_widths(model_config: ModelConfig, domains: Sequence[Domain]) -> ModelConfig:
    """`model_config` as a plain ModelConfig with the action and state widths the stores have.

    remix-train leaves `model.action_dim` / `model.state_dim` at None ("from the data"), so a 6-d LeRobot
    store trains without flags; an explicit width is a check against every store. Checkpoints store the
    resolved widths, so inference and resume see the same numbers as before. The state width is only
    checked when the model uses the state; without it, it only sizes the unused zero state input.
    """
    actions: dict[Path, int] = {}
    states: dict[Path, int] = {}
    for domain in domains:
        if domain.store in actions:  # several domains cut out of one store (domain_key)
            continue
        store = EpisodeStore.open(domain.store, mode="r", check_values=False)  # discovery validated it
        actions[domain.store] = int(store.array("action").shape[-1])
        if "state" in store.keys:
            states[domain.store] = int(store.array("state").shape[-1])
        elif model_config.use_state:
            raise ConfigError(f"store {domain.store} has no proprio state; set model.use_state=false")
    action_dim = _width("action", model_config.action_dim, actions)
    if model_config.use_state:
        state_dim = _width("state", model_config.state_dim, states)
    else:  # unused: the given width, else a store's, else the library default
        state_dim = model_config.state_dim or next(iter(states.values()), ModelConfig.state_dim)
    values = {f.name: getattr(model_config, f.name) for f in fields(ModelConfig)}
    return ModelConfig(**{**values, "action_dim": action_dim, "state_dim": state_dim})


def build_run(model_config: ModelConfig, mixture: MixtureConfig, config: TrainConfig, out: Path,
              resume_from: Path | None = None, context: DistInfo | None = None) -> TrainingRun:
    """Data, normalization (the resumed checkpoint's when resuming), network, optimizer, LR schedule, EMA."""
    context = context or init_distributed(config.device)
    device = context.device
    domains: list[Domain] = discover_domains(mixture, config.seed)
    weights = mixture_weights(mixture, domains)
    model_config = resolve_widths(model_config, domains)
    normalization = fit_normalization(domains, model_config, mixture.target_domain)
    if resume_from is not None:
        _, saved_model, normalization, _ = load_checkpoint(resume_from)
        if saved_model != model_config:
            raise ConfigError(f"cannot resume {resume_from}: its model config differs from this one; "
                              "resume with the same model.* settings or start a new run in another out= directory")
    train_set = MixtureDataset(domains, model_config, normalization, "train", config.augment, mixture.goal_relabel,
                               mixture.cache_mb)
    val_set = MixtureDataset(domains, model_config, normalization, "val", cache_mb=mixture.cache_mb)
    if config.pretrained and not model_config.encoder.startswith("resnet"):
        raise ConfigError(f"train.pretrained needs a ResNet encoder (model.encoder=resnet18|34|50), not {model_config.encoder}")
    torch.manual_seed(config.seed)
    net = DiffusionPolicyNet(model_config)
    if config.pretrained and resume_from is None:  # a resumed run has its own trained weights
        load_imagenet_weights(net.encoder.trunk, config.pretrained)
    net.to(device)
    scheduler = make_scheduler(model_config, "ddpm")
    loss_module: nn.Module = TrainingLoss(net, scheduler)
    if context.world_size > 1:
        loss_module = nn.parallel.DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, config.warmup_steps, config.steps)
    ema = EMAModel(net.parameters(), decay=config.ema_decay, use_ema_warmup=True, power=2 / 3) if config.ema else None
    meta = {"domains": train_set.names, "weights": weights.tolist(), "cotrain_domains": [d.name for d in domains if d.cotrain],
            "mixture": asdict(mixture), "train": asdict(config)}
    return TrainingRun(model_config, mixture, config, out, context, device, normalization, weights, train_set,
                       val_set, net, scheduler, loss_module, optimizer, lr_schedule, ema, meta)


def restore_run(run: TrainingRun, checkpoint: Path) -> None:
    """Continue from `checkpoint`'s resume state: weights, optimizer, LR schedule, EMA and step."""
    state = load_train_state(checkpoint)
    run.net.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.lr_schedule.load_state_dict(state["lr_schedule"])
    if run.ema is not None:
        if "ema" not in state:
            raise ConfigError(f"{checkpoint} was trained without EMA; resume with train.ema=false")
        run.ema.load_state_dict(state["ema"])
        run.ema.to(run.device)
    run.step = int(state["step"])
    if run.step >= run.config.steps:
        raise ConfigError(f"the run is already at step {run.step} >= train.steps={run.config.steps}; "
                          "raise train.steps to train longer")


def make_loader(run: TrainingRun) -> DataLoader:
    """This rank's endless, seeded sample stream, positioned after the samples already trained on."""
    config, context = run.config, run.context
    per_rank_batch = config.batch_size // context.world_size
    if per_rank_batch < 1:
        raise ConfigError(f"train.batch_size={config.batch_size} is smaller than the {context.world_size} ranks")
    sampler = WeightedDomainSampler(run.train_set.sizes, run.weights, config.samples_per_epoch, seed=config.seed,
                                    names=run.train_set.names, rank=context.rank, world_size=context.world_size)
    return DataLoader(run.train_set, batch_size=per_rank_batch,
                      sampler=SeededStream(sampler, config.seed, start=run.step * per_rank_batch),
                      num_workers=config.num_workers, pin_memory=run.device.type == "cuda",
                      persistent_workers=config.num_workers > 0)


def start_output(run: TrainingRun, replace_old_run: bool) -> None:
    """Create the run directory and its run.json; an old run is deleted only now, after data and config
    have been checked."""
    if not run.context.is_main:
        return
    out = run.out
    if replace_old_run:
        shutil.rmtree(out / "checkpoints")
        for name in ("metrics.jsonl", "losses.png", "run.json"):
            (out / name).unlink(missing_ok=True)
    prepare_out_dir(out, "the training run")  # one-line errors for an out= that cannot be created or written
    (out / "run.json").write_text(json.dumps({"model": asdict(run.model_config), **run.meta}, indent=2, default=str))


def train_step(run: TrainingRun, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One optimizer step on `batch` (augmented here, on the device); returns the per-sample loss."""
    config = run.config
    if config.augment.enabled:
        batch["images"], batch["goal"] = apply_augmentation(batch["images"], batch["goal"], batch["augment"])
    generator = step_generator(config.seed, run.step, run.context.rank, run.device)
    torch.manual_seed(int(generator.initial_seed()) % (2**31))  # dropout: also a function of (seed, step)
    per_sample = run.loss_module(batch, generator)
    loss = per_sample.mean()
    if not torch.isfinite(loss):
        raise RemixError(f"training loss became {float(loss)} at step {run.step}; lower train.lr or check the data "
                         f"(the last good checkpoint is {run.last_checkpoint})")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip > 0:
        nn.utils.clip_grad_norm_(run.net.parameters(), config.grad_clip)
    run.optimizer.step()
    run.lr_schedule.step()
    if run.ema is not None:
        run.ema.step(run.net.parameters())
    run.step += 1
    run.running.append(loss.item())
    return per_sample.detach()


def log_step(run: TrainingRun, per_sample: torch.Tensor, domains: torch.Tensor) -> float:
    """Append the mean training loss since the last row (and per domain, this batch) to metrics.jsonl."""
    row = {"step": run.step, "loss": float(np.mean(run.running)), "lr": run.lr_schedule.get_last_lr()[0]}
    for index, name in enumerate(run.train_set.names):
        selected = domains == index
        if selected.any():
            row[f"loss/{name}"] = per_sample[selected].mean().item()
    _write_metrics(run.metrics_path, row)
    run.running.clear()
    return row["loss"]


def validate_run(run: TrainingRun) -> dict[str, float]:
    """Validation metrics of the deployed (EMA) weights, also written to metrics.jsonl."""
    deployed = DiffusionPolicyNet(run.model_config).to(run.device)
    deployed.load_state_dict(ema_weights(run.net, run.ema))
    metrics = validate(deployed, run.val_set, run.config, run.device, run.scheduler)
    if metrics:
        _write_metrics(run.metrics_path, {"step": run.step, **metrics})
    return metrics


def save_run(run: TrainingRun, extra: dict[str, Any]) -> Path:
    """Checkpoint the deployed weights with resume state; older checkpoints keep their model only."""
    train_state = {"model": run.net.state_dict(), "optimizer": run.optimizer.state_dict(),
                   "lr_schedule": run.lr_schedule.state_dict(), "step": run.step}
    if run.ema is not None:
        train_state["ema"] = run.ema.state_dict()
    path = save_checkpoint(run.out / "checkpoints" / checkpoint_name(run.step), ema_weights(run.net, run.ema),
                           run.model_config, run.normalization, {**run.meta, "step": run.step, **extra}, train_state)
    for older in (run.out / "checkpoints").glob("step_*"):
        if older != path and (older / TRAIN_STATE_FILE).exists():
            (older / TRAIN_STATE_FILE).unlink()  # keep every model, but resume state only for the newest
    run.last_checkpoint = path
    if run.metrics_path.exists():
        plot_metrics(run.metrics_path, run.out / "losses.png")
    return path


def after_step(run: TrainingRun, per_sample: torch.Tensor, batch: dict[str, torch.Tensor], progress: tqdm) -> None:
    """Log, validate and checkpoint on their schedules (rank 0), and keep DDP ranks together at saves."""
    config, step = run.config, run.step
    progress.update(1)
    last = step == config.steps
    if run.context.is_main:
        if step % config.log_every == 0 or last:
            progress.set_postfix(loss=f"{log_step(run, per_sample, batch['domain']):.4f}")
        val_metrics = validate_run(run) if step % config.val_every == 0 or last else {}
        if step % config.save_every == 0 or last:
            save_run(run, {"val": val_metrics})
    if run.context.world_size > 1 and (step % config.save_every == 0 or last):
        dist.barrier()


def train(model_config: ModelConfig, mixture: MixtureConfig, config: TrainConfig, out: str | Path,
          resume: bool | str = False, overwrite: bool = False) -> Path:
    """Run (or resume) one training run; returns the last checkpoint directory.

    A new run never silently replaces an old one: if `out` already holds checkpoints, pass
    `resume` to continue it or `overwrite` to delete it first.
    """
    out = Path(out).expanduser()
    resume_from, replace_old_run = check_out_dir(out, resume, overwrite)
    run = build_run(model_config, mixture, config, out, resume_from)
    if resume_from is not None:
        restore_run(run, resume_from)
    loader = make_loader(run)
    start_output(run, replace_old_run)
    run.net.train()
    progress = tqdm(total=config.steps, initial=run.step, desc="train",
                    disable=not (config.progress and run.context.is_main), dynamic_ncols=True)
    try:
        for batch in batches(loader, run.device):
            per_sample = train_step(run, batch)
            after_step(run, per_sample, batch, progress)
            if run.step >= config.steps:
                break
    except KeyboardInterrupt:
        progress.close()
        saved = run.last_checkpoint is not None and run.last_checkpoint.name.endswith(f"{run.step:08d}")
        if run.context.is_main and run.step > 0 and not saved:
            path = save_run(run, {"interrupted": True})
            print(f"interrupted at step {run.step}; saved {path} (continue with resume=true)", flush=True)
        raise
    progress.close()
    if run.context.world_size > 1:
        dist.destroy_process_group()
    return run.last_checkpoint if run.last_checkpoint is not None else out / "checkpoints" / checkpoint_name(run.step)
