"""Writes media and metadata into storage atomically: temp file, fsync, rename — never half a file."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from workers.failures import TransientError


@dataclass(frozen=True)
class Placement:
    """Where one recording's files live: `<storage>/<source>/<account>/<sid>.<ext>` and `.json`."""

    media: Path
    metadata: Path

    @classmethod
    def of(cls, storage: Path, source: str, account_sid: str, sid: str, ext: str) -> Placement:
        folder = storage / source / account_sid
        return cls(media=folder / f"{sid}.{ext}", metadata=folder / f"{sid}.json")


def _temp_beside(path: Path) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    return fd, Path(name)


def _commit(fd: int, temp: Path, final: Path) -> None:
    os.fsync(fd)
    os.close(fd)
    os.replace(temp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json(path: Path, data: dict[str, Any]) -> None:
    fd, temp = _temp_beside(path)
    try:
        os.write(fd, json.dumps(data, indent=2, sort_keys=True, default=str).encode() + b"\n")
        _commit(fd, temp, path)
    except BaseException:
        _discard(fd, temp)
        raise


def _discard(fd: int, temp: Path) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    temp.unlink(missing_ok=True)


def _remove_leftovers(dest: Path) -> None:
    """Temp files of earlier attempts at this file, left by a worker killed mid-download."""
    for leftover in dest.parent.glob(f".{dest.name}.*.part"):
        leftover.unlink(missing_ok=True)


def _raise_for_status(response: httpx.Response) -> None:
    """httpx's own message quotes the full URL, and a signed media URL's query is a credential."""
    if response.is_error:
        url = response.request.url.copy_with(query=None)
        raise httpx.HTTPStatusError(f"media answered {response.status_code} from {url}", request=response.request, response=response)


def download(http: httpx.Client, url: str, dest: Path, auth: tuple[str, str] | None, expected: int | None = None) -> int:
    """Stream `url` into `dest`; the size must match Content-Length (and `expected` when known)."""
    fd, temp = _temp_beside(dest)
    try:
        with http.stream("GET", url, auth=auth) as response:
            _raise_for_status(response)
            declared = response.headers.get("content-length")
            size = 0
            for chunk in response.iter_bytes(64 * 1024):
                os.write(fd, chunk)
                size += len(chunk)
        if declared is not None and int(declared) != size:
            raise TransientError(f"media cut short: {size} of {declared} bytes")
        if expected is not None and expected != size:
            raise TransientError(f"media size {size} differs from the {expected} bytes Twilio reported")
        if size == 0:
            raise TransientError("media is empty")
        _commit(fd, temp, dest)
        _remove_leftovers(dest)
        return size
    except BaseException:
        _discard(fd, temp)
        raise
