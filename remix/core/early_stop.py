"""Automatic choice of the reference checkpoint: the latest one at which no domain has started to overfit.

The release leaves this to the user reading logs; the paper shows (Fig. 4) that a reference taken
50k steps past the right point costs >15% success, so we make it a rule.

The rule, with evaluations at steps s_0 < s_1 < ... and per-domain train NLL u_d(k), val NLL v_d(k):

    best_d(k)  = the eval index j <= k with the lowest val NLL v_d(j) so far
    gap_d(k)   = v_d(k) - u_d(k)                             (how much better it does on data it trained on)
    overfit_d(k) holds when both
        v_d(k) >= v_d(best)                                  (val NLL has not improved since its best)
        gap_d(k) > gap_d(best) + tolerance * v_d(best)       (yet train NLL kept falling: the gap widened)
    onset_d    = the first k starting a run of `patience` consecutive evals with overfit_d
    chosen     = the last eval index before min_d onset_d   (the last eval if no domain overfits)

So a domain has started to overfit once it keeps getting better on its training episodes but not on
its held-out ones (memorisation), while a run whose train and val losses rise together is not called
overfitting.

Unlearnable domains. A domain with nothing generalizable to learn (pure-noise or random actions)
memorises from its first steps, so by the rule above it "overfits from the start" and would end the
reference for every other domain before they have learned anything. With a starting value b_d per
domain (the held-out NLL of the domain's own action marginal: what a policy that ignores the
observation scores, and what every curve reaches within its first steps; see
`dataset.marginal_nll`), a domain is

    unlearnable_d(k)  when  min_{j<=k} v_d(j) > (1 - min_gain) * b_d

i.e. its held-out NLL has never improved meaningfully (by more than `min_gain` of b_d) on its starting
value. Unlearnable domains are reported (with their curves) and their onsets are ignored: the chosen
checkpoint is the last eval before the first onset among the *learnable* domains. The marginal rather
than the first evaluation is the starting value because the first evaluation depends on the eval
cadence (at step 100 a clean domain has already learned most of what it will). Without baselines
(`baselines=None`) no domain is called unlearnable: the rule above alone.

Because an onset can only be the *first* such run, the choice is final as soon as one onset of a
learnable domain is confirmed, so training can stop there (`SelectionResult.final`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from remix.common.errors import ConfigError


@dataclass(frozen=True)
class SelectionResult:
    """The chosen checkpoint and why."""

    step: int
    index: int
    reason: str
    onsets: dict[str, int | None]  # step at which each domain started to overfit (None: never)
    final: bool  # a learnable domain's onset is confirmed: training can stop
    unlearnable: tuple[str, ...] = ()  # domains whose val NLL never beat their starting value


def _onset(train: np.ndarray, val: np.ndarray, tolerance: float, patience: int) -> int | None:
    overfit = np.zeros(len(val), dtype=bool)
    best = 0
    for k in range(len(val)):
        if val[k] < val[best]:
            best = k
        stalled = val[k] >= val[best]
        widened = (val[k] - train[k]) - (val[best] - train[best]) > tolerance * val[best]
        overfit[k] = stalled and widened
    run = 0
    for k, flag in enumerate(overfit):
        run = run + 1 if flag else 0
        if run == patience:
            return k - patience + 1
    return None


def is_unlearnable(val: Sequence[float], baseline: float, min_gain: float) -> bool:
    """The val NLL has never fallen more than `min_gain` x `baseline` below the starting value `baseline`."""
    return bool(np.nanmin(np.asarray(val, dtype=np.float64)) > (1.0 - min_gain) * baseline)


def select_checkpoint(
    steps: Sequence[int],
    train_nll: Mapping[str, Sequence[float]],
    val_nll: Mapping[str, Sequence[float]],
    tolerance: float = 0.02,
    patience: int = 2,
    baselines: Mapping[str, float] | None = None,
    min_gain: float = 0.02,
) -> SelectionResult:
    """Apply the rule in the module docstring to per-domain curves evaluated at `steps`.

    `baselines`: per-domain starting values (marginal NLL); domains missing from it are always learnable.
    """
    if tolerance < 0 or patience < 1 or not 0 <= min_gain < 1:
        raise ConfigError(
            f"need tolerance >= 0, patience >= 1 and 0 <= min_gain < 1, got {tolerance}, {patience}, {min_gain}"
        )
    steps = [int(s) for s in steps]
    if not steps:
        raise ConfigError("no evaluations to choose a reference checkpoint from; lower reference.eval_every")
    onsets: dict[str, int | None] = {}
    onset_index: dict[str, int] = {}
    unlearnable = tuple(
        name
        for name in val_nll
        if baselines is not None
        and name in baselines
        and len(val_nll[name])
        and is_unlearnable(val_nll[name], baselines[name], min_gain)
    )
    for name in val_nll:
        train = np.asarray(train_nll[name], dtype=np.float64)
        val = np.asarray(val_nll[name], dtype=np.float64)
        if train.shape != (len(steps),) or val.shape != (len(steps),):
            raise ConfigError(f"loss curves of domain {name!r} do not match the {len(steps)} eval steps")
        k = _onset(train, val, tolerance, patience)
        onsets[name] = None if k is None else steps[k]
        if k is not None and name not in unlearnable:
            onset_index[name] = k
    note = _unlearnable_note(unlearnable, onsets, min_gain)
    if not onset_index:
        learnable = "learnable domain" if unlearnable else "domain"
        return SelectionResult(
            steps[-1],
            len(steps) - 1,
            f"{note}no {learnable} overfit (no {patience} evals in a row with val NLL above its best while the "
            f"train/val gap widened by >{tolerance:.0%}); chose the last checkpoint, step {steps[-1]}",
            onsets,
            final=False,
            unlearnable=unlearnable,
        )
    first = min(onset_index.values())
    culprits = sorted(name for name, k in onset_index.items() if k == first)
    chosen = max(first - 1, 0)
    start = " from the start" if first <= 1 else ""
    reason = note + (
        f"domain {', '.join(culprits)} started to overfit{start} at step {steps[first]} (val NLL above its best "
        f"while the train/val gap widened by >{tolerance:.0%}, {patience} evals in a row); chose step "
        f"{steps[chosen]}, the latest checkpoint before that"
    )
    return SelectionResult(steps[chosen], chosen, reason, onsets, final=True, unlearnable=unlearnable)


def _unlearnable_note(unlearnable: Sequence[str], onsets: Mapping[str, int | None], min_gain: float) -> str:
    if not unlearnable:
        return ""
    overfit = [n for n in unlearnable if onsets[n] is not None]
    tail = (
        f" (its overfitting from step {min(onsets[n] for n in overfit)} does not stop the reference)"
        if overfit
        else ""
    )
    return (
        f"domain {', '.join(unlearnable)} unlearnable: val NLL never fell more than {min_gain:.0%} below its "
        f"starting value (the action marginal's NLL){tail}; "
    )
