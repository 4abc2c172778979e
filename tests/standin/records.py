"""Dataclasses for the stand-in's accounts, API keys and the four kinds of recording."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

RecordingKind = Literal["voice", "video", "media", "legacy"]
KINDS: tuple[RecordingKind, ...] = ("voice", "video", "media", "legacy")

VOICE_STATUSES = ("in-progress", "paused", "stopped", "processing", "completed", "absent", "deleted")
V1_STATUSES = ("processing", "completed", "deleted", "failed")


def make_sid(prefix: str, rng: random.Random) -> str:
    """A Twilio-style SID: two-letter prefix plus 32 lowercase hex digits."""
    return prefix + "".join(rng.choice("0123456789abcdef") for _ in range(32))


@dataclass
class ApiKey:
    sid: str
    secret: str
    account_sid: str


@dataclass
class Account:
    sid: str
    auth_token: str
    api_keys: dict[str, ApiKey] = field(default_factory=dict)


@dataclass
class VoiceRecording:
    sid: str
    account_sid: str
    call_sid: str
    conference_sid: str | None
    status: str
    duration: int
    channels: int
    source: str
    start_time: datetime
    date_created: datetime
    date_updated: datetime
    error_code: int | None = None
    price: str | None = "-0.0025"
    price_unit: str = "USD"
    track: str = "both"
    # None means "derive deterministic bytes from the SID at request time".
    media: bytes | None = None
    kind: RecordingKind = "voice"
    # Voice Recording Encryption: `media` then holds the ciphertext and tag, `plaintext` what was encrypted.
    encryption_details: dict[str, str] | None = None
    plaintext: bytes | None = None
    # Its transcriptions (GET …/Recordings/{Sid}/Transcriptions.json), oldest first.
    transcriptions: list[Transcription] = field(default_factory=list)


@dataclass
class Transcription:
    """A recording's transcription: `in-progress`, `completed` or `failed` (the 2010 API's enum)."""

    sid: str
    status: str
    date_created: datetime
    transcription_text: str | None = None


@dataclass
class VideoRecording:
    sid: str
    account_sid: str
    room_sid: str
    source_sid: str
    participant_sid: str
    status: str
    type: str
    container_format: str
    codec: str
    duration: int
    track_name: str
    offset: int
    date_created: datetime
    # None means "the length of the media bytes actually served".
    size: int | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    media_external_location: str | None = None
    media: bytes | None = None
    kind: RecordingKind = "video"

    @property
    def grouping_sids(self) -> dict[str, str]:
        return {"room_sid": self.room_sid, "participant_sid": self.participant_sid}


@dataclass
class MediaRecording:
    sid: str
    account_sid: str
    processor_sid: str
    source_sid: str
    status: str
    format: str
    duration: int
    resolution: str
    date_created: datetime
    date_updated: datetime
    media_size: int | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"
    media: bytes | None = None
    kind: RecordingKind = "media"


@dataclass
class LegacyRecording:
    sid: str
    account_sid: str
    call_sid: str
    duration: int
    date_created: datetime
    date_updated: datetime
    media: bytes | None = None
    kind: RecordingKind = "legacy"


Recording = VoiceRecording | VideoRecording | MediaRecording | LegacyRecording
