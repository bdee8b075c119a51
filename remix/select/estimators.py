"""Datamodel estimators: how much does including a prior cluster change the target metric?

Sign convention (DataMIL's): the target metric is M = -(held-out target NLL), so a cluster's **score**
is the predicted *drop* in target loss from including it. Positive = it helps, negative = it hurts
(junk), about 0 = no measurable effect.

regression (the datamodel proper). N proxy trainings, each on the target demos plus a random subset of
the prior clusters (every cluster in with probability `inclusion`); the held-out target loss of each run
is regressed on the runs' cluster-membership matrix with ridge regularization (strength picked by
leave-one-out error), and score = -coefficient, with a standard error from the leave-one-out noise
(datamil.min_z: a cluster is selected only if its score exceeds min_z standard errors). A run's loss is the mean of its held-out loss at 80%,
90% and 100% of training (less noise than the last evaluation alone). Cost: N proxy trainings (N x proxy.steps optimizer
steps) + N evaluations; the noise of a score shrinks like 1/sqrt(N x inclusion x (1 - inclusion)), so
fewer, larger clusters need fewer runs.

first_order (TracIn-style gradient alignment, about the cost of one proxy training). One proxy trains
on the target demos plus all prior data; at `checkpoints` points along its run the gradient of the
held-out target loss g_T and the gradient of every cluster's mean loss g_c are compared; score_c =
sum_t lr_t * (1 - target_share) * (n_c / n_prior) * <g_c, g_T>, the first-order (plain SGD) decrease of
the target loss caused by the steps spent on cluster c. Cost: 1 training + checkpoints x (K + 1)
gradient evaluations on at most `max_windows` windows each. It ignores Adam's preconditioning and the
dilution effect (a useless but harmless cluster scores about 0 here, slightly negative in regression).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from tqdm import tqdm

from remix.select.config import SelectSettings
from remix.select.data import SelectionData
from remix.select.proxy import _device, take, train_proxy, trained_target_loss, windows_of


@dataclass
class RegressionResult:
    scores: np.ndarray  # (K,) predicted drop in target loss when the cluster is included
    stderr: np.ndarray  # (K,) standard error of each score
    masks: np.ndarray  # (N, K) cluster membership of every run
    losses: np.ndarray  # (N,) held-out target loss of every run
    ridge: float  # chosen ridge strength
    loo_r2: float  # leave-one-out R^2 of the linear datamodel (how much of the loss it predicts)
    loss_none: float  # target loss trained on the target demos alone
    loss_all: float  # ... and on the target demos plus all prior data
    seconds: float
    trainings: int


@dataclass
class FirstOrderResult:
    scores: np.ndarray  # (K,)
    seconds: float
    gradient_evaluations: int


@dataclass(frozen=True)
class RidgeFit:
    coef: np.ndarray  # (K,)
    stderr: np.ndarray  # (K,) standard error of each coefficient (noise variance = leave-one-out error)
    strength: float  # the ridge strength with the lowest leave-one-out error
    loo_r2: float


def ridge_fit(x: np.ndarray, y: np.ndarray, strengths: tuple[float, ...]) -> RidgeFit:
    """Ridge regression of y on x (both centered); the strength is picked by leave-one-out error
    (closed form through the hat matrix), which also serves as the noise variance of the standard errors."""
    xc, yc = x - x.mean(0), y - y.mean()
    gram = xc.T @ xc
    best: RidgeFit | None = None
    best_error = np.inf
    variance = float(np.mean(yc**2))
    for lam in strengths:
        inverse = np.linalg.inv(gram + lam * np.eye(x.shape[1]))
        coef = inverse @ xc.T @ yc
        hat = np.einsum("ij,jk,ik->i", xc, inverse, xc)
        loo = (yc - xc @ coef) / np.clip(1.0 - hat, 1e-6, None)
        error = float(np.mean(loo**2))
        if error < best_error:
            stderr = np.sqrt(np.clip(np.diag(inverse @ gram @ inverse) * error, 0, None))
            r2 = 1.0 - error / variance if variance > 0 else 0.0
            best, best_error = RidgeFit(coef, stderr, lam, r2), error
    assert best is not None
    return best


def regression_scores(settings: SelectSettings, data: SelectionData, progress: bool = True) -> RegressionResult:
    """The regression datamodel described in the module docstring."""
    started = time.perf_counter()
    d = settings.datamil
    k = data.num_clusters
    rng = np.random.default_rng(settings.seed + 1)
    masks = rng.random((d.runs, k)) < d.inclusion
    losses = np.empty(d.runs)
    for run in tqdm(range(d.runs), desc="datamodel runs", disable=not progress, leave=False):
        # the same batch-draw seed in every run: the runs differ only in their data (paired design)
        losses[run] = trained_target_loss(settings, data, windows_of(data, masks[run]), seed=settings.seed + 1000)
    fit = ridge_fit(masks.astype(np.float64), losses, d.ridge)
    n = len(data.unit_of_window)
    none = trained_target_loss(settings, data, np.zeros(n, bool), settings.seed + 1000)
    every = trained_target_loss(settings, data, np.ones(n, bool), settings.seed + 1000)
    return RegressionResult(
        scores=-fit.coef,
        stderr=fit.stderr,
        masks=masks,
        losses=losses,
        ridge=fit.strength,
        loo_r2=fit.loo_r2,
        loss_none=none,
        loss_all=every,
        seconds=time.perf_counter() - started,
        trainings=d.runs + 2,
    )


def _flat_grad(model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])


def first_order_scores(settings: SelectSettings, data: SelectionData) -> FirstOrderResult:
    """The gradient-alignment estimator described in the module docstring."""
    started = time.perf_counter()
    d = settings.datamil
    k = data.num_clusters
    rng = np.random.default_rng(settings.seed + 2)
    cluster_windows = [np.flatnonzero(data.cluster_of_window == c) for c in range(k)]
    samples = [w if len(w) <= d.max_windows else rng.choice(w, d.max_windows, replace=False) for w in cluster_windows]
    share = np.array([len(w) for w in cluster_windows], dtype=np.float64) / max(len(data.unit_of_window), 1)
    n_held = len(data.target_heldout["bins"])
    held = np.arange(n_held) if n_held <= 512 else rng.choice(n_held, 512, replace=False)
    steps = settings.proxy.steps
    marks = set(np.unique(np.linspace(1, steps, d.checkpoints).round().astype(int)).tolist())
    scores = np.zeros(k)
    evaluations = 0

    def hook(step: int, model: torch.nn.Module, lr: float) -> None:
        nonlocal evaluations
        if step not in marks:
            return
        interval = steps / len(marks)  # each checkpoint stands for this many optimizer steps
        g_target = _flat_grad(model, model.nll(_device(take(data.target_heldout, held), settings.device)).mean())
        for c, picks in enumerate(samples):
            g = _flat_grad(model, model.nll(_device(take(data.prior, picks), settings.device)).mean())
            scores[c] += interval * lr * (1 - settings.proxy.target_share) * share[c] * float(g @ g_target)
        evaluations += k + 1

    train_proxy(settings, data, np.ones(len(data.unit_of_window), bool), settings.seed + 1000, hook=hook)
    return FirstOrderResult(scores=scores, seconds=time.perf_counter() - started, gradient_evaluations=evaluations)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (NaN when either side is constant)."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)
