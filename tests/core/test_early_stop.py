"""Reference checkpoint selection on synthetic loss curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remix.common.errors import ConfigError
from remix.core.early_stop import is_unlearnable, select_checkpoint

STEPS = [100, 200, 300, 400, 500, 600]
DOWN = [3.0, 2.5, 2.2, 2.0, 1.9, 1.85]


def test_never_overfits_picks_last() -> None:
    r = select_checkpoint(STEPS, {"a": DOWN, "b": DOWN}, {"a": DOWN, "b": [x + 0.1 for x in DOWN]})
    assert r.step == 600 and not r.final and r.onsets == {"a": None, "b": None}
    assert "no domain overfit" in r.reason


def test_latest_checkpoint_before_first_domain_overfits() -> None:
    train = {"a": DOWN, "b": [3.0, 2.0, 1.5, 1.0, 0.6, 0.3]}
    val = {"a": DOWN, "b": [3.0, 2.4, 2.3, 2.5, 2.8, 3.1]}  # b: best at 300, rises from 400
    r = select_checkpoint(STEPS, train, val, tolerance=0.02, patience=2)
    assert (r.step, r.final) == (300, True)
    assert r.onsets == {"a": None, "b": 400}
    assert "domain b" in r.reason and "400" in r.reason and "300" in r.reason


def test_overfits_from_the_start_picks_first_eval() -> None:
    train = {"a": [2.0, 1.5, 1.0, 0.5, 0.3, 0.1]}
    val = {"a": [2.0, 2.2, 2.5, 2.9, 3.2, 3.5]}
    r = select_checkpoint(STEPS, train, val)
    assert r.step == 100 and "from the start" in r.reason


def test_tolerance_and_patience_ignore_noise() -> None:
    train = {"a": DOWN}
    flat_train = {"a": [3.0, 2.5, 2.49, 2.2, 2.1, 2.0]}
    noisy = [3.0, 2.5, 2.52, 2.2, 2.1, 2.0]  # a blip at 300: gap widens by 0.03 < 2% of 2.5
    assert select_checkpoint(STEPS, flat_train, {"a": noisy}, tolerance=0.02, patience=1).step == 600
    assert select_checkpoint(STEPS, flat_train, {"a": noisy}, tolerance=0.001, patience=1).step == 200
    spike = [3.0, 2.5, 2.8, 2.2, 2.1, 2.0]  # one-eval spike, patience 2 ignores it
    assert select_checkpoint(STEPS, train, {"a": spike}, patience=2).step == 600
    assert select_checkpoint(STEPS, train, {"a": spike}, patience=1).step == 200


def test_memorisation_with_flat_val_is_overfitting() -> None:
    # a pure-noise domain: val NLL flat at the marginal entropy, train NLL keeps falling
    train = {"noise": [3.0, 2.95, 2.8, 2.6, 2.4, 2.2], "clean": DOWN}
    val = {"noise": [3.0, 3.0, 3.0, 3.01, 3.0, 3.02], "clean": DOWN}
    r = select_checkpoint(STEPS, train, val, tolerance=0.02, patience=2)
    assert r.onsets == {"noise": 300, "clean": None} and r.step == 200


def test_rising_train_and_val_together_is_not_overfitting() -> None:
    # a diverging run: both curves get worse by the same amount -> gap does not widen
    up = [2.0, 1.8, 1.9, 2.1, 2.3, 2.5]
    r = select_checkpoint(STEPS, {"a": [x - 0.2 for x in up]}, {"a": up})
    assert r.step == 600


def test_bad_inputs() -> None:
    with pytest.raises(ConfigError):
        select_checkpoint([], {}, {})
    with pytest.raises(ConfigError):
        select_checkpoint(STEPS, {"a": DOWN[:3]}, {"a": DOWN})
    with pytest.raises(ConfigError):
        select_checkpoint(STEPS, {"a": DOWN}, {"a": DOWN}, tolerance=-1)


FIXTURES = Path(__file__).parent / "fixtures"


def _curves(name: str) -> dict:
    return json.loads((FIXTURES / f"reference_curves_{name}.json").read_text())


def test_unlearnable_domain_does_not_stop_the_reference_on_a_real_run() -> None:
    # Curves recorded from `remix-weights data.builtin.episodes_scale=1`: the pure-noise domain memorises
    # from its first evaluation and never gets below its action marginal's NLL.
    c = _curves("builtin_1x")
    old = select_checkpoint(c["steps"], c["train_nll"], c["val_nll"], tolerance=0.01)
    assert old.step == 100 and "random" in old.reason and "from the start" in old.reason
    new = select_checkpoint(c["steps"], c["train_nll"], c["val_nll"], 0.01, 2, c["marginal_nll"], 0.02)
    assert set(new.unlearnable) == {"random", "noisy"}
    assert new.step > old.step and new.final
    assert "random" in new.reason and "unlearnable" in new.reason
    assert new.onsets["random"] is not None  # still reported, only ignored for the choice


@pytest.mark.parametrize("run", ["builtin_1x", "builtin_1x_image32", "builtin_5x"])
def test_only_the_domains_without_signal_are_unlearnable_on_real_runs(run: str) -> None:
    # builtin_1x_image32: the same data seen through 32x32 images by the tiny CNN, recorded the same way
    c = _curves(run)
    new = select_checkpoint(c["steps"], c["train_nll"], c["val_nll"], 0.01, 2, c["marginal_nll"], 0.02)
    assert "random" in new.unlearnable
    for name in ("clean", "centimetres"):
        assert name not in new.unlearnable
        assert min(c["val_nll"][name]) < 0.95 * c["marginal_nll"][name]  # well clear of the 2% line


def test_unlearnable_rule_on_hand_made_curves() -> None:
    assert is_unlearnable([3.1, 3.0, 2.99], baseline=3.0, min_gain=0.02)
    assert not is_unlearnable([3.1, 2.9, 2.8], baseline=3.0, min_gain=0.02)
    # the only domain is unlearnable: nothing stops the reference, the last checkpoint is taken
    train = {"noise": [3.0, 2.8, 2.6, 2.4, 2.2, 2.0]}
    val = {"noise": [3.1, 3.1, 3.2, 3.3, 3.4, 3.5]}
    r = select_checkpoint(STEPS, train, val, baselines={"noise": 3.0})
    assert (r.step, r.final, r.unlearnable) == (600, False, ("noise",))
    assert "no learnable domain overfit" in r.reason
    # a domain without a baseline is judged by the overfitting rule alone
    assert select_checkpoint(STEPS, train, val, baselines={}).step == 100
    with pytest.raises(ConfigError):
        select_checkpoint(STEPS, train, val, baselines={"noise": 3.0}, min_gain=1.0)


def test_default_job_curves_only_the_noise_is_unlearnable() -> None:
    # The default job (5x data): the noisy domain now has enough episodes to learn from, and it is its
    # overfitting that ends the reference; the pure-noise domain is reported and ignored.
    c = _curves("builtin_5x")
    r = select_checkpoint(c["steps"], c["train_nll"], c["val_nll"], 0.01, 2, c["marginal_nll"], 0.02)
    assert r.unlearnable == ("random",) and r.final
    assert "domain noisy started to overfit" in r.reason and r.step == 900
