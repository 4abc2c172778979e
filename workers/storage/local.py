"""Writes media and metadata into local storage: temp file, fsync, then a create-only link into place."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from workers.egress import Egress
from workers.failures import TransientError

CHUNK_BYTES = 64 * 1024
# Filesystems without hard links (some network and FUSE mounts) answer one of these to link().
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


@dataclass(frozen=True)
class Placement:
    """Where one recording's files live: `<storage>/<source>/<account>/<sid>.<ext>` and `.json`."""

    media: Path
    metadata: Path

    @classmethod
    def of(cls, storage: Path, source: str, account_sid: str, sid: str, ext: str) -> Placement:
        folder = storage / source / account_sid
        return cls(media=folder / f"{sid}.{ext}", metadata=folder / f"{sid}.json")

    def remove_temps(self) -> int:
        """Every temp file an earlier attempt at this recording left (a worker killed mid-write)."""
        removed = 0
        for leftover in self.metadata.parent.glob(f".{self.metadata.stem}.*.part"):
            leftover.unlink(missing_ok=True)
            removed += 1
        return removed


@dataclass(frozen=True)
class Stored:
    """What landed in storage: the size and sha256 the commit record names."""

    size: int
    sha256: str


def digest(path: Path) -> Stored:
    with path.open("rb") as handle:
        sha = hashlib.file_digest(handle, "sha256")
        return Stored(size=os.fstat(handle.fileno()).st_size, sha256=sha.hexdigest())


def _temp_beside(path: Path) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    return fd, Path(name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _link_into_place(temp: Path, final: Path) -> None:
    """Create-only: a file already in place is never replaced, so a retry or a second worker
    can never overwrite a good archive (rename would)."""
    try:
        os.link(temp, final)
    except FileExistsError:
        raise TransientError(f"{final.name} appeared in storage while it was being written") from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if final.exists():
            raise TransientError(f"{final.name} appeared in storage while it was being written") from None
        temp.replace(final)


def _commit(fd: int, temp: Path, final: Path) -> None:
    os.fsync(fd)
    _link_into_place(temp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _close(fd: int, temp: Path) -> None:
    """Always, committed or not: once linked into place the temp name is only a second name."""
    os.close(fd)
    temp.unlink(missing_ok=True)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Create-only, like the media: the record it writes is what "archived" means."""
    fd, temp = _temp_beside(path)
    try:
        _write_all(fd, json.dumps(data, indent=2, sort_keys=True, default=str).encode() + b"\n")
        _commit(fd, temp, path)
    finally:
        _close(fd, temp)


def _raise_for_status(response: httpx.Response) -> None:
    """httpx's own message quotes the full URL, and a signed media URL's query is a credential.
    The Host header names the host even when the request went to its address."""
    if response.is_error:
        request = response.request
        url = request.url.copy_with(query=None, netloc=request.headers["host"].encode("ascii"))
        raise httpx.HTTPStatusError(f"media answered {response.status_code} from {url}", request=response.request, response=response)


def _stream(egress: Egress, url: str, fd: int, auth: tuple[str, str] | None) -> tuple[Stored, str | None]:
    sha = hashlib.sha256()
    size = 0
    with egress.stream(url, auth) as response:
        _raise_for_status(response)
        declared = response.headers.get("content-length")
        for chunk in response.iter_bytes(CHUNK_BYTES):
            _write_all(fd, chunk)
            sha.update(chunk)
            size += len(chunk)
    return Stored(size, sha.hexdigest()), declared


def download(egress: Egress, url: str, dest: Path, auth: tuple[str, str] | None, expected: int | None = None) -> Stored:
    """Stream `url` into `dest`; the size must match Content-Length (and `expected` when known)."""
    fd, temp = _temp_beside(dest)
    try:
        stored, declared = _stream(egress, url, fd, auth)
        if declared is not None and int(declared) != stored.size:
            raise TransientError(f"media cut short: {stored.size} of {declared} bytes")
        if expected is not None and expected != stored.size:
            raise TransientError(f"media size {stored.size} differs from the {expected} bytes Twilio reported")
        if stored.size == 0:
            raise TransientError("media is empty")
        _commit(fd, temp, dest)
        return stored
    finally:
        _close(fd, temp)
