"""One device rule for remix-weights and remix-train (remix.core.distributed.pick_device), cuda:N included."""

from __future__ import annotations

import pytest
import torch

from remix.common.errors import ConfigError
from remix.core.distributed import pick_device


def test_cpu_auto_and_bad_names() -> None:
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="use auto, cpu, cuda or cuda:N"):
        pick_device("gpu")


def test_cuda_index_is_honoured_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("cuda:1") == torch.device("cuda", 1)
    assert pick_device("cuda", local_rank=3, world_size=4) == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="not one of the 2 visible GPUs"):
        pick_device("cuda:2")
    with pytest.raises(ConfigError, match="not one of the 2 visible GPUs"):
        pick_device("cuda:x")
    with pytest.raises(ConfigError, match="torchrun started 2 ranks"):
        pick_device("cuda:0", local_rank=1, world_size=2)


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA GPU is visible"):
        pick_device("cuda:0")
