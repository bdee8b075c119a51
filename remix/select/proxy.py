"""The proxy: the Re-Mix core's small discrete policy co-trained on (target demos + a prior subset), and
the target metric, its mean NLL on the held-out target demos.

Every training draws `target_share` of each batch from the target's training demos and the rest
uniformly from *all* prior windows, then drops the draws of excluded clusters; the loss is the sum over
the kept samples divided by the full batch size. So a prior window carries the same weight in every run
it is part of, whatever else is included: leaving a cluster out removes its gradient and nothing else
(the removal semantics datamodels assume; renormalizing over the included pool instead makes a
cluster's effect depend on the size of the rest, and on small data even junk then "helps" by diluting
less junk). All runs start from the same initial weights and draw batches from the same seed, so
differences between runs come from the data alone (paired runs cut the datamodels' noise).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from remix.core.dataset import Batch
from remix.core.model import DiscretePolicy, OptimConfig, PolicyConfig, make_optimizer
from remix.core.train import optimizer_step
from remix.select.config import ProxySettings, SelectSettings
from remix.select.data import SelectionData

StepHook = Callable[[int, DiscretePolicy, float], None]


def core_encoder(name: str) -> str:
    """The core's name for an image encoder (`model.encoder=tiny` is the core's small CNN)."""
    return name  # one set of names since issue 10; PolicyConfig rejects an unknown one with a one-line error


def new_proxy(settings: SelectSettings, data: SelectionData) -> DiscretePolicy:
    p = settings.proxy
    config = PolicyConfig(
        action_dim=data.action_dim,
        n_bins=p.n_bins,
        horizon=settings.model.horizon,
        n_obs=settings.model.n_obs,
        state_dim=data.state_dim,
        cameras=tuple(settings.model.cameras),
        encoder=core_encoder(settings.model.encoder),
        state_hidden=p.state_hidden,
        hidden_dims=tuple(p.hidden_dims),
        dropout=p.dropout,
    )
    torch.manual_seed(settings.seed)
    model = DiscretePolicy(config)
    if data.state_dim > 0:
        model.set_state_statistics(data.state_mean, data.state_std)
    return model.to(settings.device)


def take(windows: Batch, index: np.ndarray | torch.Tensor) -> Batch:
    idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
    return {k: v[idx] for k, v in windows.items()}


def concat(a: Batch, b: Batch) -> Batch:
    return {k: torch.cat([a[k], b[k]]) for k in a}


def _device(batch: Batch, device: str) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


def train_proxy(
    settings: SelectSettings,
    data: SelectionData,
    keep: np.ndarray,
    seed: int,
    hook: StepHook | None = None,
) -> DiscretePolicy:
    """Train a fresh proxy on the target demos plus the prior windows where `keep` (bool, per window) is set."""
    p: ProxySettings = settings.proxy
    model = new_proxy(settings, data)
    model.train()
    optim = OptimConfig(lr=p.lr, weight_decay=p.weight_decay, warmup_steps=p.warmup_steps, grad_clip=1.0)
    optimizer, scheduler = make_optimizer(model, optim, p.steps)
    rng = np.random.default_rng(seed)
    n_target, n_prior = len(data.target_train["bins"]), len(keep)
    from_target = max(1, round(p.batch_size * p.target_share)) if n_prior else p.batch_size
    for step in range(1, p.steps + 1):
        batch = take(data.target_train, rng.integers(n_target, size=from_target))
        if from_target < p.batch_size:
            picks = rng.integers(n_prior, size=p.batch_size - from_target)
            batch = concat(batch, take(data.prior, picks[keep[picks]]))
        lr = float(scheduler.get_last_lr()[0])
        loss = model.nll(_device(batch, settings.device)).sum() / p.batch_size
        optimizer_step(optimizer, scheduler, model, loss, optim.grad_clip)
        if hook is not None:
            hook(step, model, lr)
    return model


@torch.no_grad()
def target_loss(model: DiscretePolicy, data: SelectionData, device: str, batch_size: int = 1024) -> float:
    """Mean NLL of the held-out target windows (lower is better)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    n = len(data.target_heldout["bins"])
    for start in range(0, n, batch_size):
        batch = _device(take(data.target_heldout, np.arange(start, min(n, start + batch_size))), device)
        nll = model.nll(batch)
        total, count = total + float(nll.sum()), count + len(nll)
    model.train(was_training)
    return total / max(count, 1)


def trained_target_loss(settings: SelectSettings, data: SelectionData, keep: np.ndarray, seed: int) -> float:
    """Train a proxy and return its held-out target loss averaged over 80%, 90% and 100% of the run
    (averaging over the end of the run cuts the run-to-run noise that one final evaluation carries)."""
    marks = {max(1, round(settings.proxy.steps * f)) for f in (0.8, 0.9, 1.0)}
    losses: list[float] = []

    def hook(step: int, model: DiscretePolicy, lr: float) -> None:
        if step in marks:
            losses.append(target_loss(model, data, settings.device))

    train_proxy(settings, data, keep, seed, hook=hook)
    return float(np.mean(losses))


def windows_of(data: SelectionData, included: np.ndarray) -> np.ndarray:
    """Per prior window: is its cluster included (boolean mask over clusters -> over windows)."""
    return np.asarray(included, dtype=bool)[data.cluster_of_window]
