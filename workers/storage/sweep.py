"""Removes temp files that no running job can still be writing: orphans of workers killed mid-write."""

from __future__ import annotations

import os
import time
from pathlib import Path


def sweep(storage: Path, older_than_seconds: float) -> int:
    """Temp files (`.<name>.<random>.part`) untouched for longer than any job may run are orphans:
    a live download writes to its file at least once per read timeout, far more often."""
    cutoff = time.time() - older_than_seconds
    removed = 0
    for folder, _, names in os.walk(storage):
        for name in names:
            if name.startswith(".") and name.endswith(".part"):
                removed += _remove_if_older(Path(folder) / name, cutoff)
    return removed


def _remove_if_older(path: Path, cutoff: float) -> int:
    try:
        if path.stat().st_mtime >= cutoff:
            return 0
        path.unlink()
    except FileNotFoundError:  # its next attempt removed it first
        return 0
    return 1
