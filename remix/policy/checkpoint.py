"""Checkpoint directories: weights as safetensors, everything else as JSON, training state loadable
with `torch.load(weights_only=True)`. Nothing in a checkpoint is pickled code, so loading one from an
untrusted source cannot execute anything.

Layout of one checkpoint directory:

    model.safetensors    weights used for inference (the EMA weights when EMA is on)
    config.json          {"format": 1, "model": ModelConfig, "normalization": {...}, "meta": {...}}
    train_state.pt       (optional) raw weights, optimizer, LR schedule, EMA, step, RNG: for resume

Directories are written under a temporary name and renamed into place, so a crash mid-save leaves
the previous checkpoint intact and never a half-written one.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from remix.common.errors import RemixError
from remix.policy.config import ModelConfig
from remix.policy.normalization import Normalization

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TRAIN_STATE_FILE = "train_state.pt"


def is_checkpoint_dir(path: str | Path) -> bool:
    """True when `path` holds the files a policy checkpoint needs."""
    path = Path(path)
    return (path / WEIGHTS_FILE).is_file() and (path / CONFIG_FILE).is_file()


def save_checkpoint(
    directory: str | Path,
    weights: dict[str, torch.Tensor],
    model_config: ModelConfig,
    normalization: Normalization,
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Atomically write a checkpoint directory (replacing an older one at the same path)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().cpu().contiguous() for k, v in weights.items()}, str(tmp / WEIGHTS_FILE))
    document = {
        "format": FORMAT_VERSION,
        "model": asdict(model_config),
        "normalization": normalization.to_dict(),
        "meta": meta,
    }
    (tmp / CONFIG_FILE).write_text(json.dumps(document, indent=2, allow_nan=False))
    if train_state is not None:
        torch.save(train_state, tmp / TRAIN_STATE_FILE)
    old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)
    return directory


def load_checkpoint(directory: str | Path) -> tuple[dict[str, torch.Tensor], ModelConfig, Normalization, dict]:
    """Read weights, model config, normalization and meta; every defect is a one-line RemixError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RemixError(f"policy checkpoint {directory} does not exist; pass a directory written by remix-train")
    if not is_checkpoint_dir(directory):
        raise RemixError(f"{directory} is not a policy checkpoint (needs {WEIGHTS_FILE} and {CONFIG_FILE}); "
                         "pass a checkpoint directory written by remix-train")
    try:
        document = json.loads((directory / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RemixError(f"checkpoint config {directory / CONFIG_FILE} is unreadable ({error}); "
                         "the checkpoint is corrupt, use another one") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
        found = document.get("format") if isinstance(document, dict) else None
        raise RemixError(f"checkpoint {directory} has format {found!r}, this version reads "
                         f"format {FORMAT_VERSION}; use a checkpoint written by this version of remix-train")
    try:
        model_config = ModelConfig.from_dict(document["model"])
        normalization = Normalization.from_dict(document["normalization"])
    except KeyError as error:
        raise RemixError(f"checkpoint config {directory / CONFIG_FILE} misses {error}; the checkpoint is "
                         "corrupt, use another one") from None
    try:
        weights = load_file(str(directory / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as error:
        raise RemixError(f"checkpoint weights {directory / WEIGHTS_FILE} are unreadable ({error}); "
                         "the checkpoint is corrupt, use another one") from None
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise RemixError(f"checkpoint {directory} has NaN/inf in weight {name!r}; training diverged, "
                             "use an earlier checkpoint")
    return weights, model_config, normalization, dict(document.get("meta", {}))


def load_train_state(directory: str | Path) -> dict[str, Any]:
    """The resume state of a checkpoint, loaded without unpickling code."""
    path = Path(directory) / TRAIN_STATE_FILE
    if not path.is_file():
        raise RemixError(f"checkpoint {directory} has no {TRAIN_STATE_FILE}, so training cannot resume from "
                         "it; start a new run or resume from a checkpoint saved by remix-train")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise RemixError(f"resume state {path} is unreadable ({type(error).__name__}); "
                         "resume from an earlier checkpoint") from None


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}"


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest resumable checkpoint under `run_dir/checkpoints`, or None."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return None
    candidates = sorted(p for p in root.glob("step_*") if is_checkpoint_dir(p) and (p / TRAIN_STATE_FILE).is_file())
    return candidates[-1] if candidates else None


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: metrics that are not finite are stored as null."""
    return value if math.isfinite(value) else None
