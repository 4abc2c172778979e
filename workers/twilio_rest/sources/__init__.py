"""The Twilio REST side of each recording source: fetch metadata, locate media, list recordings.

Each source module provides a `SourceApi`; `REGISTRY` maps a `Source` to it, so reactions and the
reconciler never branch on the source themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from receiver.kernel.events import Origin, RecordingEvent, Source, Status

if TYPE_CHECKING:
    from receiver.kernel.accounts import Account
    from workers.twilio_rest.paging import Backoff
    from workers.twilio_rest.rest_context import RestContext


@dataclass(frozen=True)
class MediaLocation:
    """Where to download a recording's media from, and how."""

    url: str
    # Basic auth for Twilio's own hosts; None for a pre-signed URL (which refuses credentials).
    auth: tuple[str, str] | None
    ext: str
    expected_bytes: int | None = None
    # Voice Recording Encryption applies: the metadata's encryption_details say whether it is.
    may_be_encrypted: bool = False


@dataclass(frozen=True)
class Listed:
    """One recording as a list endpoint shows it, in the terms its callback would have used."""

    sid: str
    # None while Twilio is still recording or processing it. DELETED is reported, never queued.
    status: Status | None
    date_created: datetime | None
    related: Mapping[str, str] = field(default_factory=dict)
    error_code: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)

    def event(self, source: Source, account_sid: str) -> RecordingEvent:
        """The event a callback would have brought; only meaningful for a final status."""
        if self.status is None:
            raise ValueError(f"{self.sid} has no final status yet")
        return RecordingEvent(
            source=source,
            sid=self.sid,
            status=self.status,
            account_sid=account_sid,
            occurred_at=self.date_created.isoformat() if self.date_created else None,
            error_code=self.error_code,
            related=dict(self.related),
            details=dict(self.details),
        ).with_origin(Origin.RECONCILER)


class SourceApi(Protocol):
    def fetch(self, ctx: RestContext, account: Account, sid: str) -> dict[str, Any]:
        """The recording's metadata as plain JSON-able values."""

    def media(self, ctx: RestContext, account: Account, event: RecordingEvent, metadata: dict[str, Any]) -> MediaLocation | None:
        """Where its media is, or None when the recording has none."""

    def media_from_sids(self, ctx: RestContext, account: Account, event: RecordingEvent) -> MediaLocation | None:
        """Where its media is when the SIDs alone say so (then it is downloaded while the
        metadata is fetched); None when that takes the metadata."""

    def delete(self, ctx: RestContext, account: Account, sid: str) -> None:
        """The source's own DELETE of the recording at Twilio; Twilio's error answers (a 404
        included) raise TwilioRestException."""

    def list_recordings(
        self, ctx: RestContext, account: Account, since: datetime | None, backoff: Backoff, until: datetime | None = None
    ) -> Iterator[Listed]:
        """The account's recordings created at or after `since` (all when None) and at or before
        `until` (when given), newest first. May yield a few outside the window where the API filters
        by day only, or not at all: callers filter by `date_created` too."""


REGISTRY: dict[Source, SourceApi] = {}


def register(source: Source, api: SourceApi) -> None:
    REGISTRY[source] = api


def api_for(source: Source) -> SourceApi:
    if not REGISTRY:
        _load_builtin()
    return REGISTRY[source]


def _load_builtin() -> None:
    from workers.twilio_rest.sources import legacy, media, video, voice

    register(Source.VOICE, voice.VoiceApi())
    register(Source.VIDEO, video.VideoApi())
    register(Source.MEDIA, media.MediaApi())
    register(Source.LEGACY, legacy.LegacyApi())


def details(values: Mapping[str, Any]) -> dict[str, str]:
    """Callback-style details from REST values: strings, without the empty ones."""
    return {name: str(value) for name, value in values.items() if value not in (None, "")}


def media_ext(value: Any, default: str) -> str:
    """A file extension from REST metadata, safe to put in a file name."""
    text = str(value or "").lower()
    return text if text.isalnum() and 0 < len(text) <= 8 else default


def positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
