"""The archive's commit record, `<sid>.json`: written last, naming the media's size and sha256.

Its presence in storage is what "archived" means. A run that died after writing it but before
the catalog heard of it leaves a recording that is archived all the same: the next attempt
checks the media against the record and only finishes the bookkeeping.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from workers.archive import Stored, digest
from workers.failures import PermanentError


def build(metadata: dict[str, Any], event: dict[str, Any], media: dict[str, Any] | None) -> dict[str, Any]:
    return {"recording": metadata, "event": event, "media": media, "archived_at": time.time()}


def media_entry(file: Path, stored: Stored, fmt: str) -> dict[str, Any]:
    return {"file": file.name, "bytes": stored.size, "sha256": stored.sha256, "format": fmt}


def read(path: Path) -> dict[str, Any] | None:
    """The record, or None when there is none. A record is only ever linked into place whole,
    so one that does not parse is damage to look at, not something to overwrite."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        raise PermanentError(f"archive record {path.name} is not JSON: storage needs a look") from None
    if not isinstance(record, dict):
        raise PermanentError(f"archive record {path.name} is not a JSON object: storage needs a look")
    return record


def verify(record: dict[str, Any], folder: Path) -> None:
    """The media the record names is in place with its size and sha256 (records written before
    sha256 was kept are checked by size)."""
    media = record.get("media")
    if not media:
        return
    path = folder / str(media.get("file"))
    try:
        stored = digest(path)
    except FileNotFoundError:
        raise PermanentError(f"archive record names {path.name}, which is not in storage") from None
    if stored.size != media.get("bytes") or media.get("sha256", stored.sha256) != stored.sha256:
        raise PermanentError(f"{path.name} in storage does not match its archive record (size or sha256)")
