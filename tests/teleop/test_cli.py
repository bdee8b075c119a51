"""remix-collect as a process: scripted headset end to end, SIGKILL mid-episode, clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remix.data import EpisodeStore

FAST_SCRIPT = """\
defaults:
  - oculus
  - _self_
_target_: teleop.factory.make_scripted_oculus
rate_hz: 60.0
script:
  - - {duration: 0.1, grip: true}
    - {duration: 0.6, move: [0.0, 0.0, -0.03], grip: true}
    - {duration: 0.2, grip: true}
    - {duration: 0.2, buttons: [A]}
"""


def collect_command(tmp_path: Path, *overrides: str) -> list[str]:
    config_dir = tmp_path / "configs"
    (config_dir / "teleop").mkdir(parents=True, exist_ok=True)
    (config_dir / "teleop" / "fast.yaml").write_text(FAST_SCRIPT)
    return [sys.executable, "-c", "from teleop.cli import main; main()", f"--config-dir={config_dir}",
            "teleop=fast", "operator=scripted", "progress=false", *overrides]


def run(command: list[str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def committed(path: Path) -> int:
    try:
        return EpisodeStore.open(path, mode="r", check_values=False).num_episodes
    except Exception:
        return 0


def test_sigkill_mid_episode_loses_only_that_episode(tmp_path) -> None:
    store_path = tmp_path / "demos.zarr"
    command = collect_command(tmp_path, "reach", "num_demos=50", f"out={store_path}")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while committed(store_path) < 2 and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            time.sleep(0.05)
        before = committed(store_path)
        assert before >= 2
        time.sleep(0.4)  # inside the next episode (each takes ~1.1 s): steps are buffered, not stored
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    store = EpisodeStore.open(store_path, mode="a")  # validates; drops anything half-written
    assert store.problems() == []
    assert store.num_episodes in (before, before + 1)
    for index in range(store.num_episodes):  # every stored episode is a whole demo
        actions = store.read_episode(index)["action"]
        assert actions[:, 0].sum() == pytest.approx(0.03, abs=2e-3)
    kept = store.num_episodes
    store.close()  # release the writer lock this check took, so the rerun can write
    # the rerun continues the count and appends after the surviving demos
    result = run(collect_command(tmp_path, "reach", f"num_demos={kept + 1}", f"out={store_path}"), tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{kept + 1}/{kept + 1} demos of 'reach'" in result.stdout
    assert EpisodeStore.open(store_path).num_episodes == kept + 1


def test_cli_errors_are_one_line_and_write_nothing(tmp_path) -> None:
    store_path = tmp_path / "never.zarr"
    no_task = run(collect_command(tmp_path, f"out={store_path}"), tmp_path)
    assert no_task.returncode == 1 and no_task.stderr.strip().splitlines()[-1].startswith("error: no task given")
    no_adb = run(collect_command(tmp_path, "reach", "teleop=oculus", "teleop.adb_port=1", f"out={store_path}"),
                 tmp_path)
    assert no_adb.returncode == 1 and "adb start-server" in no_adb.stderr
    bad_gain = run(collect_command(tmp_path, "reach", "teleop.mapping.position_gain=-1", f"out={store_path}"),
                   tmp_path)
    assert bad_gain.returncode == 1 and "position_gain must be a positive number" in bad_gain.stderr
    assert not store_path.exists()
    help_text = run([sys.executable, "-c", "from teleop.cli import main; main()", "--help"], tmp_path)
    assert help_text.returncode == 0 and "num_demos: 25" in help_text.stdout
