"""remix-data through its console-script entry point, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import zarr

from remix.data import EpisodeStore
from remix.data.synthetic import SyntheticDomain, make_synthetic_store


def run_cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from remix.data.cli import main; sys.argv[0] = 'remix-data'; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "s.zarr"
    make_synthetic_store(path, (SyntheticDomain("a", num_episodes=3, episode_length=4), SyntheticDomain("b", num_episodes=2, episode_length=6)))
    return path


def test_info_prints_correct_numbers(store_path):
    result = run_cli("info", str(store_path), "json=true")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    actions = EpisodeStore.open(store_path).array("action")[:]
    assert info["episodes"] == 5 and info["steps"] == 24
    assert info["episode_length"] == {"min": 4, "mean": 4.8, "max": 6}
    assert info["fields"]["domain"]["values"] == {"a": 3, "b": 2}
    assert info["keys"]["action"] == {"shape": [7], "dtype": "float32"}
    for dim, name in enumerate(("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper")):
        assert info["action"][name]["mean"] == pytest.approx(actions[:, dim].mean(), abs=1e-6)
        assert info["action"][name]["std"] == pytest.approx(actions[:, dim].std(), abs=1e-6)
        assert info["action"][name]["min"] == pytest.approx(actions[:, dim].min())
        assert info["action"][name]["max"] == pytest.approx(actions[:, dim].max())
    text = run_cli("info", str(store_path))
    assert "episodes  5" in text.stdout and "domain       a: 3, b: 2" in text.stdout


def test_validate_ok_and_bad(store_path, tmp_path):
    assert run_cli("validate", str(store_path)).stdout.startswith("ok:")
    bad = tmp_path / "bad.zarr"
    make_synthetic_store(bad, SyntheticDomain("x", num_episodes=2, episode_length=3))
    zarr.open_group(bad, mode="r+")["data/action"][4, 0] = np.nan
    result = run_cli("validate", str(bad))
    assert result.returncode == 1
    assert "NaN/inf at episode 1, step 1 (dim 0)" in result.stdout


def test_missing_path_is_one_line_error(tmp_path):
    result = run_cli("info", str(tmp_path / "nope.zarr"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: no episode store at {tmp_path / 'nope.zarr'}; check the path or create one (remix-data synthetic OUT)"]


def test_unknown_key_and_command_rejected(store_path):
    unknown = run_cli("info", str(store_path), "colour=red")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "error: unknown setting 'colour' for remix-data; run remix-data --help to see its settings"
    ]
    bad_command = run_cli("frobnicate", str(store_path))
    assert bad_command.returncode == 1 and "unknown command 'frobnicate'" in bad_command.stderr


def test_synthetic_then_info(tmp_path):
    out = tmp_path / "synth"
    result = run_cli("synthetic", str(out), "synthetic.episode_length=3")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["centimetres.zarr", "clean.zarr", "noisy.zarr", "random.zarr"]
    assert EpisodeStore.open(out / "clean.zarr").num_steps == 90


def test_hydra_flag_values_are_not_positionals(store_path):
    result = run_cli("--cfg", "job", "info", str(store_path))
    assert result.returncode == 0 and "command: info" in result.stdout and f"path: {store_path}" in result.stdout


def test_help_lists_usage():
    result = run_cli("--help")
    assert result.returncode == 0 and "remix-data info PATH" in result.stdout and "synthetic:" in result.stdout


def test_positional_path_with_special_characters(tmp_path):
    odd = tmp_path / "my data#1.zarr"
    result = run_cli("info", str(odd))
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: no episode store at {odd}; check the path or create one (remix-data synthetic OUT)"
