"""The two Re-Mix training stages: the reference (with automatic early stopping) and the DRO proxy.

Both stages draw batches from the size-proportional mixture (every window equally likely). The
reference minimises the plain mean NLL; the proxy minimises sum_d alpha_d * mean excess NLL while
alpha follows the Group DRO update. The reference NLL of a window is either computed by a forward
pass every step or, when inputs are deterministic (no augmentation, eval mode: always true here),
computed once for every training window and looked up (`cache_reference=True`).
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from remix.common.atomic import write_atomic
from remix.common.errors import ConfigError, RemixError
from remix.core.dataset import Batch, BatchStream, EncodedWindows
from remix.core.distributed import DistInfo, all_reduce_sum, is_distributed
from remix.core.dro import DomainSums, GroupDRO
from remix.core.early_stop import SelectionResult, select_checkpoint
from remix.core.model import DiscretePolicy, OptimConfig, make_optimizer, sequence_nll

MAX_BATCH_SIZE = 1 << 16

@dataclass(frozen=True)
class StageConfig:
    """Length and bookkeeping of one training stage."""

    steps: int = 500_000  # the release's RT-X length (an upper bound: early stopping ends it sooner)
    batch_size: int = 512
    log_every: int = 50
    num_workers: int = 0  # DataLoader workers for lazily read evaluation/caching passes
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:  # a 10^9 batch asked numpy for 7 TiB
            raise ConfigError(f"batch_size={self.batch_size} must be in 1..{MAX_BATCH_SIZE}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers={self.num_workers} must be >= 0 (0 = read in the main process)")


@dataclass(frozen=True)
class ReferenceConfig:
    """Reference stage: evaluation cadence and the early-stopping rule (see early_stop.py)."""

    stage: StageConfig = field(default_factory=StageConfig)
    eval_every: int = 50_000
    eval_samples: int = 512  # per domain and split
    tolerance: float = 0.02
    patience: int = 2
    stop_when_overfit: bool = True
    # a domain whose val NLL never falls more than min_gain x its marginal NLL below it is unlearnable and
    # does not stop the reference (early_stop.py); None: no domain is called unlearnable (the release)
    min_gain: float | None = 0.02
    past_chosen_evals: int = (
        0  # ablation (paper Fig. 4): take the checkpoint this many evals after the chosen one
    )


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """torch.save `state` crash-safely (a SIGKILL mid-write leaves the previous checkpoint intact)."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    write_atomic(path, buffer.getvalue())


def load_state(path: Path, device: torch.device) -> dict[str, Any] | None:
    """A checkpoint written by `save_state`, or None if there is none."""
    if not path.exists():
        return None
    return torch.load(path, map_location=device, weights_only=False)


def rng_state() -> dict[str, Any]:
    """The torch RNG streams training draws from (dropout), so a resumed run draws the same numbers."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def resume_stream(batches: Iterable[Batch], start: int) -> Iterator[Batch]:
    """The batch stream from batch `start` on; only a `BatchStream` can skip ahead without replaying."""
    if start == 0:
        return iter(batches)
    if not isinstance(batches, BatchStream):
        raise RemixError("resuming needs a BatchStream (a plain iterable cannot skip to the checkpoint)")
    return batches.iterate(start)


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def index_batches(
    windows: EncodedWindows, tensors: Batch | None, indices: np.ndarray, batch_size: int, num_workers: int = 0
) -> Iterator[Batch]:
    """Batches of the given flat indices, in order: from memory, or read lazily through DataLoader workers."""
    if tensors is not None:
        for start in range(0, len(indices), batch_size):
            idx = torch.as_tensor(indices[start : start + batch_size], dtype=torch.long)
            yield {k: v[idx] for k, v in tensors.items()}
        return
    subset = Subset(windows, [int(i) for i in indices])
    yield from DataLoader(subset, batch_size=batch_size, shuffle=False, num_workers=num_workers)


@torch.no_grad()
def per_domain_nll(
    model: DiscretePolicy,
    windows: EncodedWindows,
    tensors: Batch | None,
    indices: np.ndarray,
    batch_size: int,
    dist_info: DistInfo,
    num_workers: int = 0,
) -> np.ndarray:
    """Mean NLL per domain over `indices` (NaN for a domain with none); ranks split the work."""
    k = len(windows.domain_names)
    totals = torch.zeros(2, k, dtype=torch.float64, device=dist_info.device)
    mine = indices[dist_info.rank :: dist_info.world_size]
    was_training = model.training
    model.eval()
    for batch in index_batches(windows, tensors, mine, batch_size, num_workers):
        batch = to_device(batch, dist_info.device)
        nll = model.nll(batch).double()
        totals[0].index_add_(0, batch["domain"], nll)
        totals[1].index_add_(0, batch["domain"], torch.ones_like(nll))
    model.train(was_training)
    totals = all_reduce_sum(totals).cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals[1] > 0, totals[0] / np.maximum(totals[1], 1), np.nan)


def _wrap(model: nn.Module, dist_info: DistInfo) -> nn.Module:
    if not is_distributed():
        return model
    device_ids = [dist_info.device.index] if dist_info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def optimizer_step(
    optimizer: torch.optim.Optimizer, scheduler: Any, model: nn.Module, loss: torch.Tensor, clip: float
) -> None:
    if not torch.isfinite(loss):
        raise RemixError(
            f"training loss became {loss.item()}; lower the learning rate (optim.lr) or check the data"
        )
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    scheduler.step()


@dataclass
class ReferenceResult:
    steps_run: int
    eval_steps: list[int]
    train_nll: dict[str, list[float]]
    val_nll: dict[str, list[float]]
    loss_log: list[dict[str, float]]
    selection: SelectionResult
    checkpoint: Path


def train_reference(
    model: DiscretePolicy,
    batches: Iterable[Batch],
    train: tuple[EncodedWindows, Batch | None],
    val: tuple[EncodedWindows, Batch | None],
    config: ReferenceConfig,
    checkpoint_dir: Path,
    dist_info: DistInfo,
    seed: int = 0,
    on_eval: Callable[[int, dict[str, float], dict[str, float]], None] | None = None,
    baselines: Mapping[str, float] | None = None,
    state_path: Path | None = None,
) -> ReferenceResult:
    """Train on the size mixture, evaluate per domain every `eval_every` steps, pick the checkpoint.

    `baselines`: per-domain starting values for the unlearnable rule (`config.min_gain`). With
    `state_path`, the full training state is saved there at every evaluation and, if it exists when
    called, training resumes from it (same batches, same dropout draws: the same result).
    """
    from remix.core.dataset import eval_indices

    stage = config.stage
    names = list(train[0].domain_names)
    train_eval = eval_indices(train[0], config.eval_samples, seed)
    val_eval = eval_indices(val[0], config.eval_samples, seed + 1)
    val_names = [n for d, n in enumerate(names) if val[0].domain_sizes[d] > 0]
    if not val_names:
        raise RemixError("no domain has validation episodes; raise data.val_fraction or add episodes")
    wrapped = _wrap(model, dist_info)
    optimizer, scheduler = make_optimizer(model, stage.optim, stage.steps)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    eval_steps: list[int] = []
    train_curves: dict[str, list[float]] = {n: [] for n in names}
    val_curves: dict[str, list[float]] = {n: [] for n in names}
    loss_log: list[dict[str, float]] = []
    selection: SelectionResult | None = None
    running, count, start = 0.0, 0, 0
    state = load_state(state_path, dist_info.device) if state_path is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        eval_steps, train_curves, val_curves = state["eval_steps"], state["train_nll"], state["val_nll"]
        loss_log, running, count, start = state["loss_log"], state["running"], state["count"], state["step"]
        set_rng_state(state["rng"])
    stream = resume_stream(batches, start)
    bar = tqdm(
        total=stage.steps, initial=start, desc="reference", disable=not dist_info.is_main, dynamic_ncols=True
    )
    step = start
    model.train()
    min_gain = config.min_gain if config.min_gain is not None else 0.0
    usable_baselines = None if config.min_gain is None else baselines

    def choose() -> SelectionResult:
        """The checkpoint the curves so far pick (after each evaluation, and once more after a resume)."""
        return select_checkpoint(
            eval_steps,
            {n: train_curves[n] for n in val_names},
            {n: val_curves[n] for n in val_names},
            config.tolerance,
            config.patience,
            usable_baselines,
            min_gain,
        )

    for step in range(start + 1, stage.steps + 1):
        batch = to_device(next(stream), dist_info.device)
        loss = sequence_nll(wrapped(batch), batch).mean()
        optimizer_step(optimizer, scheduler, model, loss, stage.optim.grad_clip)
        running, count = running + loss.item(), count + 1
        bar.update(1)
        if step % stage.log_every == 0:
            loss_log.append({"step": step, "loss": running / count, "lr": scheduler.get_last_lr()[0]})
            bar.set_postfix(loss=f"{running / count:.3f}")
            running, count = 0.0, 0
        if step % config.eval_every == 0 or step == stage.steps:
            tr = per_domain_nll(model, *train, train_eval, stage.batch_size * 4, dist_info, stage.num_workers)
            va = per_domain_nll(model, *val, val_eval, stage.batch_size * 4, dist_info, stage.num_workers)
            eval_steps.append(step)
            for d, n in enumerate(names):
                train_curves[n].append(float(tr[d]))
                val_curves[n].append(float(va[d]))
            if dist_info.is_main:
                torch.save(model.state_dict(), checkpoint_dir / f"step_{step:08d}.pt")
            if on_eval is not None:
                on_eval(step, dict(zip(names, tr.tolist())), dict(zip(names, va.tolist())))
            if state_path is not None and dist_info.is_main:
                save_state(
                    state_path,
                    {
                        "step": step,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "eval_steps": eval_steps,
                        "train_nll": train_curves,
                        "val_nll": val_curves,
                        "loss_log": loss_log,
                        "running": running,
                        "count": count,
                        "rng": rng_state(),
                    },
                )
            selection = choose()
            past = len(eval_steps) - 1 - selection.index
            if selection.final and config.stop_when_overfit and past >= config.past_chosen_evals:
                break
    bar.close()
    if selection is None:  # resumed from the state saved at the last step
        selection = choose()
    if config.past_chosen_evals > 0:  # ablation: a reference that has overfit (paper Fig. 4, left)
        index = min(selection.index + config.past_chosen_evals, len(eval_steps) - 1)
        selection = replace(
            selection,
            step=eval_steps[index],
            index=index,
            reason=f"{selection.reason}; ablation reference.past_chosen_evals={config.past_chosen_evals}: "
            f"took step {eval_steps[index]} instead",
        )
    return ReferenceResult(
        steps_run=step,
        eval_steps=eval_steps,
        train_nll=train_curves,
        val_nll=val_curves,
        loss_log=loss_log,
        selection=selection,
        checkpoint=checkpoint_dir / f"step_{selection.step:08d}.pt",
    )


@torch.no_grad()
def reference_nll_cache(
    reference: DiscretePolicy,
    windows: EncodedWindows,
    tensors: Batch | None,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> torch.Tensor:
    """The frozen reference's NLL of every training window, (N,) float32 on `device`."""
    reference.eval()
    out = torch.empty(len(windows), dtype=torch.float32, device=device)
    for batch in index_batches(windows, tensors, np.arange(len(windows)), batch_size, num_workers):
        batch = to_device(batch, device)
        out[batch["index"]] = reference.nll(batch).float()
    return out


@dataclass
class DROResult:
    weights: dict[str, float]  # time-averaged alpha: the Re-Mix weights
    final_alpha: dict[str, float]
    log: list[dict[str, float]]
    seconds: float = 0.0  # wall time of the training loop (this call; not counting a resumed part)


class DROTrainer:
    """One proxy policy trained under Group DRO against a frozen reference (or its cached NLL)."""

    def __init__(
        self,
        proxy: DiscretePolicy,
        dro: GroupDRO,
        names: list[str],
        stage: StageConfig,
        dist_info: DistInfo,
        reference: DiscretePolicy | None = None,
        cache: torch.Tensor | None = None,
    ) -> None:
        if (reference is None) == (cache is None):
            raise ValueError("give exactly one of a reference model or a reference NLL cache")
        self.proxy, self.dro, self.names, self.stage, self.dist = proxy, dro, names, stage, dist_info
        self.reference, self.cache = reference, cache
        if reference is not None:
            reference.eval().requires_grad_(False)
        self.wrapped = _wrap(proxy, dist_info)
        self.optimizer, self.scheduler = make_optimizer(proxy, stage.optim, stage.steps)
        self.world_size = dist_info.world_size

    def reference_nll(self, batch: Batch) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[batch["index"]]
        with torch.no_grad():
            assert self.reference is not None
            return self.reference.nll(batch)

    def step(self, batch: Batch) -> tuple[torch.Tensor, DomainSums, torch.Tensor]:
        """One DRO step on one (per-rank) batch: returns (loss, global domain sums, scores)."""
        batch = to_device(batch, self.dist.device)
        excess = sequence_nll(self.wrapped(batch), batch) - self.reference_nll(batch)
        sums = DomainSums.of(
            excess, batch["domain"], self.dro.num_domains, self.dro.config.clip_excess
        ).all_reduce()
        scores = self.dro.update(sums)
        loss = self.dro.loss(excess, batch["domain"], sums, self.world_size)
        optimizer_step(self.optimizer, self.scheduler, self.proxy, loss, self.stage.optim.grad_clip)
        return loss.detach(), sums, scores

    def run(
        self,
        batches: Iterable[Batch],
        steps: int | None = None,
        state_path: Path | None = None,
        checkpoint_every: int = 0,
    ) -> DROResult:
        """`steps` DRO steps. With `state_path`, the whole state is saved there every `checkpoint_every`
        steps and, if it exists when called, the run resumes from it with the same result."""
        steps = steps or self.stage.steps
        k = self.dro.num_domains
        acc = {
            "excess_sum": torch.zeros(k, dtype=torch.float64),
            "excess_count": torch.zeros(k, dtype=torch.float64),
        }
        acc["score_sum"] = torch.zeros(k, dtype=torch.float64)
        log: list[dict[str, float]] = []
        loss_sum, interval, start = 0.0, 0, 0
        state = load_state(state_path, self.dist.device) if state_path is not None else None
        if state is not None:
            self.proxy.load_state_dict(state["proxy"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.dro.load_state_dict(state["dro"])
            acc, log, loss_sum, interval, start = (
                state["acc"],
                state["log"],
                state["loss_sum"],
                state["interval"],
                state["step"],
            )
            set_rng_state(state["rng"])
        stream = resume_stream(batches, start)
        self.proxy.train()
        bar = tqdm(
            total=steps, initial=start, desc="group DRO", disable=not self.dist.is_main, dynamic_ncols=True
        )
        began = time.perf_counter()
        for step in range(start + 1, steps + 1):
            loss, sums, scores = self.step(next(stream))
            acc["excess_sum"] += sums.excess_sum.cpu()
            acc["excess_count"] += sums.count.cpu()
            acc["score_sum"] += scores.cpu()
            loss_sum, interval = loss_sum + loss.item() / self.world_size, interval + 1
            bar.update(1)
            if step % self.stage.log_every == 0 or step == steps:
                log.append(self._log_row(step, loss_sum / interval, acc, interval))
                top = max(range(k), key=lambda d: float(self.dro.average[d]))
                bar.set_postfix(
                    loss=f"{log[-1]['loss']:.3f}", top=f"{self.names[top]}={float(self.dro.average[top]):.2f}"
                )
                for value in acc.values():
                    value.zero_()
                loss_sum, interval = 0.0, 0
            if (
                state_path is not None
                and checkpoint_every > 0
                and step % checkpoint_every == 0
                and step < steps
            ):
                if self.dist.is_main:
                    save_state(
                        state_path,
                        {
                            "step": step,
                            "proxy": self.proxy.state_dict(),
                            "optimizer": self.optimizer.state_dict(),
                            "scheduler": self.scheduler.state_dict(),
                            "dro": self.dro.state_dict(),
                            "acc": acc,
                            "log": log,
                            "loss_sum": loss_sum,
                            "interval": interval,
                            "rng": rng_state(),
                        },
                    )
        bar.close()
        return DROResult(
            weights={n: float(self.dro.average[d]) for d, n in enumerate(self.names)},
            final_alpha={n: float(self.dro.alpha[d]) for d, n in enumerate(self.names)},
            log=log,
            seconds=time.perf_counter() - began,
        )

    def _log_row(
        self, step: int, loss: float, acc: Mapping[str, torch.Tensor], interval: int
    ) -> dict[str, float]:
        row: dict[str, float] = {"step": step, "loss": loss}
        for d, n in enumerate(self.names):
            row[f"alpha/{n}"] = float(self.dro.alpha[d])
            row[f"average/{n}"] = float(self.dro.average[d])
            count = acc["excess_count"][d]
            row[f"excess/{n}"] = float(acc["excess_sum"][d] / count) if count > 0 else math.nan
            row[f"score/{n}"] = float(acc["score_sum"][d] / interval)
        return row
