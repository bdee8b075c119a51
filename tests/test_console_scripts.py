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


LEARNING = ("torch", "torchvision", "diffusers", "safetensors", "matplotlib", "tqdm")
# blocks the learning stack: importing any of it raises, as on a robot host installed with [robot]
BLOCK_LEARNING = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    f"        if name.split('.')[0] in {LEARNING!r}: raise ImportError('blocked: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_core_dependencies_leave_the_learning_stack_to_an_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("[")[0].split(";")[0].strip() for dep in project["dependencies"]}
    assert not names & set(LEARNING)
    extras = project["optional-dependencies"]
    assert {dep.split(">")[0] for dep in extras["learning"]} >= set(LEARNING)
    assert "remix-stack[learning]" in extras["dev"], "scripts/setup.sh installs .[dev]: it must bring the learning stack"
    assert not any(dep.split(">")[0] in LEARNING for dep in extras["robot"])


def test_robot_host_programs_run_without_the_learning_stack():
    """remix-robot-server, remix-goal and remix-collect (and the drivers) import and start without torch."""
    code = BLOCK_LEARNING + (
        "import robots.server, robots.remote, robots.cli, robots.sim, robots.widowx, robots.franka, teleop.cli\n"
        "sys.argv = ['remix-robot-server', '--help']\n"
        "robots.server.main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("remix-robot-server")
