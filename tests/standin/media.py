"""Deterministic media bytes (real WAV for voice) and content types for each recording kind."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from functools import lru_cache

WAV_HEADER_SIZE = 44
WAV_SAMPLE_RATE = 8000  # Twilio voice recordings are 8 kHz, 16-bit PCM in WAV form.
MP3_PREFIX = b"ID3\x04\x00\x00\x00\x00\x00\x00"
# Bodies larger than this are made while they are sent, never held whole: a test may ask for 500 MB.
STREAM_ABOVE = 16 * 2**20
STREAM_BLOCK = 2**20

CONTENT_TYPES = {
    "wav": "audio/x-wav",
    "mp3": "audio/mpeg",
    "mka": "audio/x-matroska",
    "mkv": "video/x-matroska",
    "mp4": "video/mp4",
    "webm": "video/webm",
}


def wav_header(data_len: int, channels: int) -> bytes:
    """The 44-byte canonical RIFF/WAVE header for 16-bit PCM."""
    block_align = channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_len)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, WAV_SAMPLE_RATE,
                      WAV_SAMPLE_RATE * block_align, block_align, 16)
        + b"data"
        + struct.pack("<I", data_len)
    )


def _payload(sid: str, size: int) -> bytes:
    # Seeding with the SID keeps content identical across runs and processes,
    # so a test can recompute what it should have downloaded.
    return random.Random(sid).randbytes(max(size, 0))


@lru_cache(maxsize=64)
def media_for(sid: str, ext: str, size: int, channels: int = 1) -> bytes:
    """Deterministic bytes of exactly `size` (WAV: at least the header) for one SID and format."""
    if ext == "wav":
        data_len = max(size, WAV_HEADER_SIZE) - WAV_HEADER_SIZE
        return wav_header(data_len, channels) + _payload(sid + ":wav", data_len)
    if ext == "mp3":
        body = _payload(sid + ":mp3", size - len(MP3_PREFIX))
        return (MP3_PREFIX + body)[: max(size, 0)]
    return _payload(f"{sid}:{ext}", size)


def media_stream(sid: str, ext: str, size: int, channels: int = 1) -> Iterator[bytes]:
    """Deterministic bytes of exactly `size` made a block at a time (WAV: the header first): one
    block seeded by the SID, repeated, so the stand-in holds one block however large the body."""
    head = wav_header(max(size, WAV_HEADER_SIZE) - WAV_HEADER_SIZE, channels) if ext == "wav" else MP3_PREFIX if ext == "mp3" else b""
    head = head[: max(size, 0)]
    if head:
        yield head
    block = random.Random(f"{sid}:{ext}:stream").randbytes(STREAM_BLOCK)
    remaining = max(size, 0) - len(head)
    while remaining > 0:
        chunk = block[:remaining]
        remaining -= len(chunk)
        yield chunk
