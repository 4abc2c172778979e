"""The archive's commit record, `<sid>.json`: written last, naming the media's size and sha256.

Its presence in storage is what "archived" means. A run that died after writing it but before
the catalog heard of it leaves a recording that is archived all the same: the next attempt
checks the media against the record and only finishes the bookkeeping.
"""

from __future__ import annotations

import json
import time
from typing import Any

from workers.failures import PermanentError
from workers.storage.seam import Store, Stored, name_of


def build(metadata: dict[str, Any], event: dict[str, Any], media: dict[str, Any] | None) -> dict[str, Any]:
    return {"recording": metadata, "event": event, "media": media, "archived_at": time.time()}


def media_entry(key: str, stored: Stored, fmt: str) -> dict[str, Any]:
    return {"file": name_of(key), "bytes": stored.size, "sha256": stored.sha256, "format": fmt}


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, indent=2, sort_keys=True, default=str).encode() + b"\n"


def read(store: Store, key: str) -> dict[str, Any] | None:
    """The record, or None when there is none. A record is only ever put in place whole,
    so one that does not parse is damage to look at, not something to overwrite."""
    text = store.read_record(key)
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        raise PermanentError(f"archive record {name_of(key)} is not JSON: storage needs a look") from None
    if not isinstance(record, dict):
        raise PermanentError(f"archive record {name_of(key)} is not a JSON object: storage needs a look")
    return record


def verify(record: dict[str, Any], store: Store, folder: str) -> None:
    """The media the record names is in place with its size and sha256 (records written before
    sha256 was kept are checked by size)."""
    media = record.get("media")
    if not media:
        return
    key = f"{folder}/{media.get('file')}"
    stored = store.digest(key)
    if stored is None:
        raise PermanentError(f"archive record names {name_of(key)}, which is not in storage")
    if stored.size != media.get("bytes") or media.get("sha256", stored.sha256) != stored.sha256:
        raise PermanentError(f"{name_of(key)} in storage does not match its archive record (size or sha256)")
