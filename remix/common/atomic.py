"""Crash-safe file writes: the one helper every part uses to replace a file.

The data goes to a temporary file in the same folder, is flushed and fsync'ed, then renamed over the
target (atomic on POSIX), and the folder entry is fsync'ed too. A crash or power cut at any moment
leaves either the old file or the new one, never a truncated mix.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Replace `path` with `data` so that readers never see a half-written file."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 2) -> None:
    """`write_atomic` of `data` as JSON."""
    write_atomic(path, json.dumps(data, indent=indent))


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (some file systems do not support this; then it is skipped)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
