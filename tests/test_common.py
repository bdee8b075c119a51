"""remix.common: torch-free shared infrastructure and its one atomic-write helper."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remix.common.atomic import write_atomic, write_json_atomic


def test_common_imports_no_torch_or_learning_code() -> None:
    """A robot host runs robots + remix.common without torch: importing them must not pull it in."""
    code = (
        "import sys, remix, remix.common.cli, remix.common.rpc, remix.common.errors, remix.common.rate, "
        "remix.common.atomic, remix.common.operator_input, robots.server, robots.sim_interface\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'diffusers', 'torchvision', 'matplotlib'))\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_write_atomic_replaces_and_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "result.json"
    target.write_text("old")
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert len(synced) >= 1  # the data itself was fsync'ed before the rename
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temp file left


def test_write_atomic_keeps_old_file_when_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "goal.png"
    target.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["goal.png"]
