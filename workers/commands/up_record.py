"""Where a running `up` keeps its Redis and receiver, so other commands find them without a URL copied."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

# In the data directory; holds the embedded Redis's password, so only its owner may read it.
FILE = "up.json"


@dataclass(frozen=True)
class UpRecord:
    """What `up` started: its process, its Redis (password included) and its receiver's base URL."""

    pid: int
    redis_url: str
    receiver_url: str

    def __repr__(self) -> str:
        from receiver.kernel.settings import redact_url

        return f"UpRecord(pid={self.pid}, redis_url={redact_url(self.redis_url)!r}, receiver_url={self.receiver_url!r})"


def path_in(data_dir: Path) -> Path:
    return data_dir / FILE


def write(data_dir: Path, redis_url: str, receiver_url: str) -> Path:
    """Record this process as the running `up`; readable by its owner only (mode 0600)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = path_in(data_dir)
    staging = path.with_name(f".{FILE}.{os.getpid()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"pid": os.getpid(), "redis_url": redis_url, "receiver_url": receiver_url}, handle)
    staging.chmod(0o600)  # a umask cannot widen it, but an existing file kept its old mode
    staging.replace(path)
    return path


def read(data_dir: Path) -> UpRecord | None:
    """The record of an `up` that is still running; None when there is none (or it died)."""
    try:
        raw = json.loads(path_in(data_dir).read_text(encoding="utf-8"))
        record = UpRecord(int(raw["pid"]), str(raw["redis_url"]), str(raw["receiver_url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if _alive(record.pid) else None


def remove(data_dir: Path) -> None:
    """Forget this process's record (and only its own: another `up` may have replaced it)."""
    path = path_in(data_dir)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if int(json.loads(path.read_text(encoding="utf-8"))["pid"]) == os.getpid():
            path.unlink()


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False  # 0 and negatives would signal whole process groups
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, though not ours to signal
    return True
