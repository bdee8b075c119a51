"""remix-shakedown on the mock, the MuJoCo sim and franky-sim (real franky client), driven by scripted answers."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import pytest

from robots.shakedown import shakedown_main

ALL_YES = "operator.answers=[" + ",".join(["y"] * 14) + "]"


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["remix-shakedown", *args])
    with pytest.raises(SystemExit) as exited:
        shakedown_main()
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out + out.err


@pytest.mark.parametrize("robot", ["mock", "sim"])
def test_shakedown_passes_every_step(monkeypatch, capsys, tmp_path, robot: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run_cli(monkeypatch, capsys, f"robot={robot}", "operator=scripted", ALL_YES)
    assert code == 0, out
    for step in ("connect", "read state", "move +x", "move -z", "gripper close", "gripper open", "stop / resume",
                 "reset again"):
        assert step in out
    assert "FAIL" not in out and "skipped" not in out


def test_shakedown_skips_quits_and_fails(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run_cli(monkeypatch, capsys, "robot=mock", "operator=scripted", "operator.answers=[y,n,q]")
    assert code == 0 and "operator skipped" in out and "operator quit" in out and "move +x" not in out
    # a reflex at the robot's 3rd command (the first moves): that step fails, the rest still run, exit code 1
    code, out = run_cli(monkeypatch, capsys, "robot=mock", "+robot.faults={reflex:[3]}", "operator=scripted", ALL_YES)
    assert code == 1 and "FAIL" in out and "RobotFault" in out and "reset again" in out


def test_shakedown_rejects_bad_settings(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run_cli(monkeypatch, capsys, "robot=mock", "move_m=0.5")
    assert code == 1 and out.strip().splitlines()[-1].startswith("error: shakedown needs")


@pytest.fixture
def franky_sim_process():
    """franky-sim's own server in a separate process, as a lab would run it (`--simulator auto` fails without genesis)."""
    pytest.importorskip("franky")
    pytest.importorskip("franky_sim")
    process = subprocess.Popen([sys.executable, "-u", "-m", "franky_sim.run_server", "--simulator", "mujoco"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        host, deadline = None, time.monotonic() + 60
        while host is None and time.monotonic() < deadline and process.poll() is None:
            match = re.search(r"using '([0-9.]+)' as the robot IP", process.stdout.readline())
            host = match.group(1) if match else None
        assert host, "franky-sim did not start"
        threading.Thread(target=process.stdout.read, daemon=True).start()  # keep its pipe drained
        yield host
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_shakedown_on_franky_sim(monkeypatch, capsys, tmp_path, franky_sim_process) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = run_cli(monkeypatch, capsys, "robot=franka", f"robot.fci_host={franky_sim_process}", "robot.realtime=false",
                        "robot.gripper=null", "robot.cameras=null", "gripper=false", "timeout_s=20",
                        # the simulator runs slower than real time here: a wall-clock watchdog would trip, and
                        # home is put near the simulated arm's start pose to keep the resets short
                        "robot.watchdog_periods=50", "robot.home=[0.55,0.0,0.45,0.0,0.0,0.0,1.0]",
                        "robot.workspace_high=[0.75,0.3,0.55]", "operator=scripted", ALL_YES)
    assert code == 0, out
    assert "move +z" in out and "stop / resume" in out and "FAIL" not in out
