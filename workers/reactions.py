"""What happens for each final state: archive a completed recording, record absent and failed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from receiver.events import ERROR_MEANINGS, RecordingEvent
from workers.archive import Placement, download, write_json
from workers.context import WorkerContext
from workers import sources
from workers.sources import MediaLocation, SourceApi

if TYPE_CHECKING:
    from receiver.accounts import Account


def completed(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    """Fetch metadata, stream the media, write metadata beside it. Safe to run again, even twice
    at once: the claim lets one run archive, and the other then finds it archived."""
    state = ctx.catalog.get(event.source.value, event.sid)
    if state.get("archived_at"):
        return {"archived": "already", "media": state.get("media_path")}
    with ctx.claims.hold(event.source.value, event.sid):
        if ctx.catalog.get(event.source.value, event.sid).get("archived_at"):
            return {"archived": "already", "media": state.get("media_path")}
        return _archive(ctx, event)


def _archive(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    account = ctx.account(event.account_sid)
    api = sources.api_for(event.source)
    early = api.media_from_sids(ctx, account, event)
    if early is not None:
        place = _placement(ctx, event, early)
        metadata, size = _fetch_while_downloading(ctx, api, account, event, early, place)
        location: MediaLocation | None = early
    else:
        metadata = api.fetch(ctx, account, event.sid)
        location = api.media(ctx, account, event, metadata)
        place = _placement(ctx, event, location)
        if location is not None:
            size = download(ctx.http, location.url, place.media, auth=location.auth, expected=location.expected_bytes)
    media: dict[str, Any] | None = None
    if location is not None:
        media = {"file": place.media.name, "bytes": size, "format": location.ext}
    write_json(place.metadata, {"recording": metadata, "event": event.to_payload(), "media": media})
    ctx.catalog.update(
        event.source.value, event.sid,
        archived_at=time.time(), media_path=str(place.media) if media else None, metadata_path=str(place.metadata),
        media_bytes=media["bytes"] if media else None,
        duration=metadata.get("duration"), date_created=metadata.get("date_created"),
    )
    return {"archived": "now", "media": str(place.media) if media else None, "bytes": media["bytes"] if media else 0}


def _placement(ctx: WorkerContext, event: RecordingEvent, location: MediaLocation | None) -> Placement:
    ext = location.ext if location else "none"
    return Placement.of(ctx.settings.storage_path, event.source.value, event.account_sid, event.sid, ext)


def _fetch_while_downloading(
    ctx: WorkerContext, api: SourceApi, account: Account, event: RecordingEvent, location: MediaLocation, place: Placement
) -> tuple[dict[str, Any], int]:
    """Both Twilio calls at once: with Twilio's latency on each, one after the other was most
    of a recording's callback-to-archived time. A metadata failure wins (it is the one a
    serial run would have met first); the download is then only a file replaced on retry."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="media") as pool:
        downloading = pool.submit(
            download, ctx.http, location.url, place.media, auth=location.auth, expected=location.expected_bytes
        )
        metadata = api.fetch(ctx, account, event.sid)
        return metadata, downloading.result()


def absent(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    code = event.error_code or ""
    meaning = ERROR_MEANINGS.get(code, "no audio was recorded")
    ctx.catalog.update(event.source.value, event.sid, error_code=code or None, error_meaning=meaning)
    return {"absent": code, "meaning": meaning}


def failed(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    code = event.error_code or ""
    reason = ERROR_MEANINGS.get(code) or event.details.get("FailedOperation") or "Twilio reported the recording failed"
    ctx.catalog.update(event.source.value, event.sid, error_code=code or None, error_meaning=reason)
    return {"failed": code, "reason": reason}
