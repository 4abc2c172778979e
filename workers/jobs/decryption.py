"""Encrypted voice recordings while archiving: decrypted on their way into storage, or kept as Twilio served them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterator
from typing import Any

from workers.encryption import details as encryption
from workers.encryption.gcm_stream import decrypted
from workers.encryption.private_keys import KeyDirectory
from workers.settings import WorkerSettings

CIPHER = "AES-256-GCM, 16-byte tag at the end; key: encryption_cek with RSA-OAEP (SHA-256)"


def stage(settings: WorkerSettings, chunks: Iterator[bytes], metadata: Callable[[], dict[str, Any]]) -> Generator[bytes]:
    """What goes into storage. The metadata says whether the media is encrypted; it is asked for
    only once the first chunk is in, so the download and the metadata fetch still overlap."""
    try:
        first = next(chunks, None)
        found = encryption.parse(metadata())
        media = itertools.chain([first] if first is not None else [], chunks)
        if found is None or settings.keep_encrypted:
            yield from media
            return
        key = KeyDirectory(settings.recording_keys_dir).content_key(found)
        yield from decrypted(media, key, found.iv)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def record_entry(settings: WorkerSettings, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The commit record's word on what the stored media is; None for a recording in the clear."""
    found = encryption.parse(metadata)
    if found is None:
        return None
    if settings.keep_encrypted:
        return {"decrypted": False, "public_key_sid": found.public_key_sid, "cipher": CIPHER,
                "encryption_details": metadata.get("encryption_details")}
    return {"decrypted": True, "public_key_sid": found.public_key_sid}
