"""The console's read-only view of the archive: a local file to serve, or a short-lived S3 link."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from console import media
from console.archive_facts import Facts, facts
from console.media import MediaFile
from receiver.kernel.errors import RecordingReceiverError
from receiver.kernel.settings import SharedSettings
from workers.storage import record
from workers.storage.local import LocalStore

if TYPE_CHECKING:
    from workers.storage.s3 import S3Store


@dataclass
class ArchiveView:
    """What the recording page shows from storage; `error` when storage could not be read."""

    media: MediaFile | None = None
    facts: Facts = field(default_factory=Facts)
    error: str = ""
    media_origin: str = "'self'"


class Archive:
    """Opened lazily: the S3 client (and boto3) only when a page first needs it."""

    def __init__(self, settings: SharedSettings, link_seconds: int) -> None:
        self.settings = settings
        self.link_seconds = link_seconds
        self._store: LocalStore | S3Store | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> LocalStore | S3Store:
        with self._lock:
            if self._store is None:
                self._store = _open(self.settings)
            return self._store

    @property
    def is_local(self) -> bool:
        return self.settings.storage_bucket is None

    def local_path(self, media: MediaFile) -> Path:
        store = self.store
        assert isinstance(store, LocalStore)
        return store.path_of(media.key)

    def link(self, media: MediaFile, download: bool) -> str:
        """A presigned GET for object storage (RecordingReceiverError when it cannot be signed)."""
        store = self.store
        assert not isinstance(store, LocalStore)
        return store.presigned_get(media.key, self.link_seconds, media.content_type, media.disposition(download))

    def origin(self, media: MediaFile) -> str:
        """Where the browser fetches the media from, for the page's Content-Security-Policy."""
        if self.is_local:
            return "'self'"
        try:
            parts = urlsplit(self.link(media, download=False))
        except RecordingReceiverError:
            return "'self'"
        return f"'self' {parts.scheme}://{parts.netloc}"

    def record(self, key: str) -> dict[str, Any] | None:
        """The commit record, or None; RecordingReceiverError (one line) when storage fails."""
        return record.read(self.store, key)

    def view(self, source: str, sid: str, fields: dict[str, str]) -> ArchiveView:
        """The media and the record's facts for one recording page (blocking: storage is read);
        the player's media is only ever what the catalog and the commit record both name."""
        found = media.locate(source, sid, fields)
        key = media.record_key(source, sid, fields)
        try:
            kept = self.record(key) if key else None
        except RecordingReceiverError as exc:
            return ArchiveView(found, error=f"the archive record could not be read: {exc}")
        # The player only for media the commit record names: the record is what "archived" means.
        named = kept.get("media") if kept else None
        if found is None or not isinstance(named, dict) or named.get("file") != found.name:
            return ArchiveView(None, facts(kept))
        return ArchiveView(found, facts(kept), media_origin=self.origin(found))

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def _open(settings: SharedSettings) -> LocalStore | S3Store:
    bucket = settings.storage_bucket
    if bucket is None:
        return LocalStore(settings.storage_path)
    # Only for s3://: boto3 costs ~37 MB and ~0.7 s to load.
    from workers.storage.s3 import S3Options, S3Store

    name, prefix = bucket
    return S3Store(name, prefix, S3Options(endpoint_url=settings.storage_endpoint_url))
