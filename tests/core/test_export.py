"""Mixture export for Octo/OpenVLA-style configs and the printed weight table."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from remix.common.errors import ConfigError
from remix.core.run import mixture_export, print_weight_table


def test_weights_and_size_multipliers() -> None:
    out = mixture_export({"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 0.25, "b": 0.5, "c": 0.25})
    assert out["weights"] == [["a", 0.5], ["b", 0.3], ["c", 0.2]]
    # multiplier = weight / size share, largest = 1 (OXE_NAMED_MIXES style, balance_weights=True)
    assert dict(out["multipliers"]) == pytest.approx({"a": 1.0, "b": 0.3, "c": 0.4})


def test_floor_raises_small_weights_and_keeps_the_sum() -> None:
    out = mixture_export({"a": 0.001, "b": 0.004, "c": 0.995}, {"a": 0.3, "b": 0.3, "c": 0.4}, floor=0.01)
    w = dict(out["weights"])
    assert w["a"] == pytest.approx(0.01) and w["b"] == pytest.approx(0.01)
    assert sum(w.values()) == pytest.approx(1.0) and w["c"] == pytest.approx(0.98)
    with pytest.raises(ConfigError):
        mixture_export({"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}, floor=0.6)


def test_weight_table_lists_every_domain_with_ratio() -> None:
    buffer = io.StringIO()
    print_weight_table(
        {"clean": 0.3, "random": 0.1}, {"clean": 0.2, "random": 0.2}, Console(file=buffer, width=100)
    )
    text = buffer.getvalue()
    assert "clean" in text and "1.50x" in text and "0.50x" in text
