"""A list-of-paths setting given one bare value (`data.paths=x.zarr`) is a list of one, through the CLI entry."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from remix.core.cli import weights_main
from remix.data.synthetic import SyntheticDomain, make_synthetic_store
from remix.policy.cli import train_main


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, main: Callable[[], None], name: str,
            *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", [name, *args])
    with pytest.raises(SystemExit) as exited:
        main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out + out.err


def test_one_store_without_brackets_is_a_list_of_one(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    make_synthetic_store(tmp_path / "only.zarr", SyntheticDomain("only", num_episodes=2, episode_length=4)).close()
    code, out = run_cli(monkeypatch, capsys, weights_main, "remix-weights", "data.paths=only.zarr", "out=w")
    # the store was read as data.paths=[only.zarr]: the run got as far as counting its domains
    assert code == 1 and "Re-Mix needs at least 2 domains, found ['only']" in out and "ListConfig" not in out
    code, out = run_cli(monkeypatch, capsys, train_main, "remix-train", "runs/p", "data.paths=missing.zarr",
                        "data.cotrain=also-missing.zarr")
    assert code == 1 and "no episode store at missing.zarr" in out and "ListConfig" not in out


def test_a_bare_number_for_a_list_of_numbers_names_the_fix(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run_cli(monkeypatch, capsys, train_main, "remix-train", "runs/p", "data.paths=x.zarr",
                        "model.image_size=32")
    assert code == 2 and out.strip().splitlines() == [
        "error: model.image_size must be a list: write model.image_size=[32] (run remix-train --help to see its settings)"]
