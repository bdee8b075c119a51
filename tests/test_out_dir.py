"""One output-directory check (remix.common.cli.prepare_out_dir) for remix-weights, remix-subset and remix-select."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from remix.common import cli
from remix.common.cli import prepare_out_dir
from remix.common.errors import ConfigError
from remix.core.distributed import DistInfo
from remix.core.run import WeightsSettings, prepare_run_dir
from remix.core.subset import run_subset
from remix.select.config import SelectSettings
from remix.select.run import run_select


def test_out_dir_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"^out=.*afile is a file; give a directory for the things$"):
        prepare_out_dir(tmp_path / "afile", "the things")
    with pytest.raises(ConfigError, match=r"^cannot create out=.*afile/sub \(.*\); choose a writable place$"):
        prepare_out_dir(tmp_path / "afile" / "sub", "the things")
    done = prepare_out_dir(tmp_path / "done", "the things")
    assert done.is_dir()
    (done / "result.json").write_text("{}")
    with pytest.raises(ConfigError, match="already holds a result; pass overwrite=true or choose another out="):
        prepare_out_dir(done, "the things", holds=("result.json", "a result"))
    assert prepare_out_dir(done, "the things", holds=("result.json", "a result"), overwrite=True) == done
    assert not prepare_out_dir(tmp_path / "checked", "the things", create=False).exists()
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)
    with pytest.raises(ConfigError, match=r"^out=.*done is not writable; choose a writable place$"):
        prepare_out_dir(done, "the things")


def test_the_three_commands_refuse_a_file_as_out_alike(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"domains": ["a", "b"], "weights": {"a": 0.5, "b": 0.5}, "sources": []}))
    with pytest.raises(ConfigError, match="is a file; give a directory for the run$"):
        prepare_run_dir(WeightsSettings(out=afile), DistInfo(0, 1, torch.device("cpu")))
    with pytest.raises(ConfigError, match="is a file; give a directory for the subset stores$"):
        run_subset(weights, 0.5, afile)
    with pytest.raises(ConfigError, match="is a file; give a directory for the selection$"):
        run_select(SelectSettings(out=str(afile)))
