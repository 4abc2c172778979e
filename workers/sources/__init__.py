"""The Twilio REST side of each recording source: fetch metadata, locate media, list recordings.

Each source module provides a `SourceApi`; `REGISTRY` maps a `Source` to it, so reactions and the
reconciler never branch on the source themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from receiver.events import Source

if TYPE_CHECKING:
    from receiver.accounts import Account
    from receiver.events import RecordingEvent
    from workers.context import WorkerContext


@dataclass(frozen=True)
class MediaLocation:
    """Where to download a recording's media from, and how."""

    url: str
    # Basic auth for Twilio's own hosts; None for a pre-signed URL (which refuses credentials).
    auth: tuple[str, str] | None
    ext: str
    expected_bytes: int | None = None


class SourceApi(Protocol):
    def fetch(self, ctx: WorkerContext, account: Account, sid: str) -> dict[str, Any]:
        """The recording's metadata as plain JSON-able values."""

    def media(self, ctx: WorkerContext, account: Account, event: RecordingEvent, metadata: dict[str, Any]) -> MediaLocation | None:
        """Where its media is, or None when the recording has none."""


REGISTRY: dict[Source, SourceApi] = {}


def register(source: Source, api: SourceApi) -> None:
    REGISTRY[source] = api


def api_for(source: Source) -> SourceApi:
    if not REGISTRY:
        _load_builtin()
    return REGISTRY[source]


def _load_builtin() -> None:
    from workers.sources import voice

    register(Source.VOICE, voice.VoiceApi())
