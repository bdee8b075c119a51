"""Every console script in pyproject.toml is installed, answers --help with its usage, and rejects unknown keys."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_shows_usage_and_config(name):
    result = subprocess.run([str(BIN / name), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(name), f"{name} --help should start with its own usage line"
    assert "== Configuration" in result.stdout


def test_unknown_key_is_one_line_error():
    result = subprocess.run([str(BIN / "remix-eval"), "polcies={a:b}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown setting 'polcies' for remix-eval; run remix-eval --help to see its settings"
    ]
