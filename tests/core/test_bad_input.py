"""Bad input gives one-line errors that name the problem and the fix; the CLIs exit non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from remix.common.errors import ConfigError, RemixError
from remix.core.dataset import WindowSpec, prepare_data
from remix.data.domains import discover_domains
from remix.data.store import EpisodeStore
from remix.data.synthetic import SyntheticDomain, make_synthetic_store


def _store(path: Path, episodes: int = 3, action_dim: int = 7, nan: bool = False, **fields: str) -> Path:
    """A small store; `nan` corrupts one action value on disk (the store API refuses to write NaN)."""
    names = tuple(f"a{i}" for i in range(action_dim))
    store = EpisodeStore.create(path, fps=5, action_names=names, gripper_dims=(), state_names=("x", "y"))
    rng = np.random.default_rng(0)
    for _ in range(episodes):
        action = rng.normal(size=(6, action_dim)).astype(np.float32)
        store.add_episode({"action": action, "state": rng.normal(size=(6, 2)).astype(np.float32)}, **fields)
    if nan:
        zarr.open_group(path, mode="r+")["data/action"][8, 0] = np.nan
    return path


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and len(message) < 300
    return message


def test_single_domain(tmp_path: Path) -> None:
    with pytest.raises(RemixError) as error:
        discover_domains([_store(tmp_path / "only.zarr")], min_domains=2)
    assert "at least 2 domains" in _one_line(error) and "only" in str(error.value)


def test_empty_domain(tmp_path: Path) -> None:
    with pytest.raises(RemixError) as error:
        discover_domains([_store(tmp_path / "a.zarr"), _store(tmp_path / "empty.zarr", episodes=0)], min_domains=2)
    assert "['empty']" in _one_line(error) and "no episodes" in str(error.value)


def test_mismatched_action_dims(tmp_path: Path) -> None:
    with pytest.raises(RemixError) as error:
        discover_domains([_store(tmp_path / "seven.zarr"), _store(tmp_path / "three.zarr", action_dim=3)], min_domains=2)
    assert "action dims differ" in _one_line(error)


def test_nan_actions(tmp_path: Path) -> None:
    with pytest.raises(RemixError) as error:
        discover_domains([_store(tmp_path / "ok.zarr"), _store(tmp_path / "nan.zarr", nan=True)], min_domains=2)
    assert "NaN" in _one_line(error) and "nan.zarr" in str(error.value)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(RemixError) as error:
        discover_domains([_store(tmp_path / "ok.zarr"), tmp_path / "missing.zarr"], min_domains=2)
    assert "missing.zarr" in _one_line(error)


def test_domain_key_splits_a_store_and_unknown_key_fails(tmp_path: Path) -> None:
    path = tmp_path / "bridge.zarr"
    make_synthetic_store(
        path, SyntheticDomain("bridge", num_episodes=6, episode_length=5, scenes=("sink", "desk"))
    )
    domains = discover_domains([path], "scene", min_domains=2)
    assert [(d.name, d.episodes) for d in domains] == [("sink", (0, 2, 4)), ("desk", (1, 3, 5))]
    with pytest.raises(ConfigError) as error:
        discover_domains([path], "kitchen", min_domains=2)
    assert "kitchen" in _one_line(error) and "scene" in str(error.value)
    with pytest.raises(ConfigError, match="no cameras"):
        prepare_data(domains, WindowSpec(cameras=("wrist",)))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; from remix.core.cli import {0}; sys.argv[0] = '{0}'; {0}()"
    name = "subset_main" if args and args[0] == "subset" else "weights_main"
    return subprocess.run(
        [sys.executable, "-c", code.format(name), *args[1 if args and args[0] == "subset" else 0 :]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_help_and_errors(tmp_path: Path) -> None:
    helped = _cli("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "dro:" in helped.stdout and "data:" in helped.stdout
    missing = _cli(
        f"data.paths=[{tmp_path / 'nope.zarr'},{tmp_path / 'nope2.zarr'}]",
        f"out={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("error:") and "nope.zarr" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    unknown = _cli("dro.etaa=1", cwd=tmp_path)
    assert unknown.returncode != 0 and "etaa" in unknown.stderr
    bad_value = _cli("dro.scoring=max", f"out={tmp_path / 'run2'}", cwd=tmp_path)
    assert bad_value.returncode == 1 and "dro.scoring" in bad_value.stderr
    subset = _cli("subset", str(tmp_path / "no-weights.json"), f"out={tmp_path / 's'}", cwd=tmp_path)
    assert subset.returncode == 1 and "no weights file" in subset.stderr
