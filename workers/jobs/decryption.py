"""Encrypted voice recordings while archiving: decrypted on their way into storage, or kept as Twilio served them."""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from typing import Any

from workers.encryption import details as encryption
from workers.encryption.gcm_stream import decrypted
from workers.encryption.private_keys import KeyDirectory
from workers.settings import WorkerSettings

CIPHER = "AES-256-GCM, 16-byte tag at the end; key: encryption_cek with RSA-OAEP (SHA-256)"
# While the metadata is on its way, the download reads on up to this much (then waits for it).
READ_AHEAD_BYTES = 2**20


def stage(settings: WorkerSettings, chunks: Iterator[bytes], metadata: Future[dict[str, Any]]) -> Generator[bytes]:
    """What goes into storage. Media that starts the way a WAV file does is plain audio: passed on at
    once, so a download never waits for the metadata (nor dies with its failed fetch, and is kept
    for the retry). Otherwise the metadata says whether it is encrypted, so nothing is passed on
    before it is in; meanwhile the download reads ahead, so the two still overlap."""
    try:
        first = next(chunks, None)
        if first is not None and _plain_wav(first):
            yield first
            yield from chunks
            return
        ahead = [first] if first is not None else []
        ahead += _read_ahead(chunks, metadata) if first is not None and not metadata.done() else []
        found = encryption.parse(metadata.result())
        media = itertools.chain(_handed_over(ahead), chunks)
        if found is None or settings.keep_encrypted:
            yield from media
            return
        key = KeyDirectory(settings.recording_keys_dir).content_key(found)
        yield from decrypted(media, key, found.iv)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _plain_wav(head: bytes) -> bool:
    # RIFF....WAVE: 8 fixed bytes a ciphertext starts with by chance once in 2**64.
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _read_ahead(chunks: Iterator[bytes], metadata: Future[dict[str, Any]]) -> list[bytes]:
    """More chunks, until the metadata is in or READ_AHEAD_BYTES are held."""
    held: list[bytes] = []
    size = 0
    for chunk in chunks:
        held.append(chunk)
        size += len(chunk)
        if metadata.done() or size >= READ_AHEAD_BYTES:
            break
    return held


def _handed_over(held: list[bytes]) -> Iterator[bytes]:
    """The read-ahead, each chunk let go of as it is passed on."""
    while held:
        yield held.pop(0)


def known(metadata: dict[str, Any]) -> Future[dict[str, Any]]:
    """Metadata already fetched, as `stage` takes it."""
    done: Future[dict[str, Any]] = Future()
    done.set_result(metadata)
    return done


def record_entry(settings: WorkerSettings, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The commit record's word on what the stored media is; None for a recording in the clear."""
    found = encryption.parse(metadata)
    if found is None:
        return None
    if settings.keep_encrypted:
        return {"decrypted": False, "public_key_sid": found.public_key_sid, "cipher": CIPHER,
                "encryption_details": metadata.get("encryption_details")}
    return {"decrypted": True, "public_key_sid": found.public_key_sid}
