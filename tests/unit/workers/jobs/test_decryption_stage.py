"""The archive's decryption stage: nothing passed on before the metadata says what the media is,
a bounded read-ahead meanwhile, and the download closed whatever happens."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from tests.standin.encryption import encrypt
from tests.support.recording_keys import key_pair
from tests.support.servers import wait_for
from workers.failures import TransientError
from workers.jobs.decryption import READ_AHEAD_BYTES, known, stage
from workers.settings import WorkerSettings

SID = "CR" + "e" * 32
CHUNK = 64 * 1024


class Download:
    """A real generator of chunks that counts what was read and whether it was closed."""

    def __init__(self, data: bytes) -> None:
        self.data, self.read, self.closed = data, 0, False

    def chunks(self) -> Iterator[bytes]:
        try:
            for start in range(0, len(self.data), CHUNK):
                self.read += len(self.data[start:start + CHUNK])
                yield self.data[start:start + CHUNK]
        finally:
            self.closed = True


def settings(**values: Any) -> WorkerSettings:
    return WorkerSettings(**values)


def test_in_the_clear_passes_through_unchanged() -> None:
    download = Download(b"a" * 300_000)
    assert b"".join(stage(settings(), download.chunks(), known({"encryption_details": None}))) == download.data
    assert download.closed


def test_the_read_ahead_is_bounded_while_the_metadata_is_on_its_way() -> None:
    download = Download(b"b" * (4 * READ_AHEAD_BYTES))
    pending: Future[dict[str, Any]] = Future()
    out = stage(settings(), download.chunks(), pending)
    first: list[bytes] = []
    reader = threading.Thread(target=lambda: first.append(next(out)))
    reader.start()
    # The reader stops reading once the read-ahead is full, and passes nothing on without the metadata.
    wait_for(lambda: download.read >= READ_AHEAD_BYTES, timeout=30, what="the read-ahead to fill")
    assert download.read <= READ_AHEAD_BYTES + CHUNK and first == []  # the first chunk, then the read-ahead
    pending.set_result({})
    reader.join(timeout=30)
    assert first and b"".join([first[0], *out]) == download.data


def test_a_metadata_failure_abandons_the_download_and_closes_it() -> None:
    download = Download(b"c" * 300_000)
    failed: Future[dict[str, Any]] = Future()
    failed.set_exception(TransientError("the metadata fetch failed"))
    with pytest.raises(TransientError):
        list(stage(settings(), download.chunks(), failed))
    assert download.closed


def test_decrypted_with_the_key_or_kept_encrypted(tmp_path: Path) -> None:
    pair = key_pair()
    pair.install(tmp_path, SID)
    plaintext = b"audio" * 100_000
    media, raw = encrypt(pair.public_pem, SID, plaintext)
    metadata = {"encryption_details": raw}
    assert b"".join(stage(settings(recording_keys_dir=tmp_path), Download(media).chunks(), known(metadata))) == plaintext
    kept = stage(settings(recording_keys_dir=tmp_path, keep_encrypted=True), Download(media).chunks(), known(metadata))
    assert b"".join(kept) == media


def test_plain_wav_never_waits_for_the_metadata() -> None:
    # Its download is kept even when the metadata fetch fails (the retry does not download again).
    download = Download(b"RIFF\x00\x00\x00\x00WAVEfmt " + b"d" * 300_000)
    never: Future[dict[str, Any]] = Future()
    assert b"".join(stage(settings(), download.chunks(), never)) == download.data
    assert download.closed and not never.done()
