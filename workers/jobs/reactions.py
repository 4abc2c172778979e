"""What happens for each final state: archive a completed recording, record absent and failed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from receiver.kernel.events import ERROR_MEANINGS, RecordingEvent
from workers import archive_record
from workers.archive import Placement, Stored, digest, download, write_json
from workers.jobs.context import WorkerContext
from workers.twilio_rest import sources
from workers.twilio_rest.sources import MediaLocation, SourceApi

if TYPE_CHECKING:
    from receiver.kernel.accounts import Account


def completed(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    """Fetch metadata, stream the media, write the commit record beside it. Safe to run again,
    even twice at once: the claim lets one run archive, and the other then finds it archived."""
    state = ctx.catalog.get(event.source.value, event.sid)
    if state.get("archived_at"):
        return {"archived": "already", "media": state.get("media_path")}
    with ctx.claims.hold(event.source.value, event.sid):
        if ctx.catalog.get(event.source.value, event.sid).get("archived_at"):
            return {"archived": "already", "media": state.get("media_path")}
        place = _placement(ctx, event, None)
        # Under the claim no other run writes this recording: any temp file of it is a dead
        # run's, even one whose record made it into place just before it died.
        place.remove_temps()
        record = archive_record.read(place.metadata)
        if record is not None:
            # A run that died after its commit record: archived already, only the catalog lags.
            archive_record.verify(record, place.metadata.parent)
            return _bookkeep(ctx, event, place.metadata, record, "recovered")
        return _archive(ctx, event)


def _archive(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    account = ctx.account(event.account_sid)
    api = sources.api_for(event.source)
    location = api.media_from_sids(ctx, account, event)
    stored: Stored | None
    if location is not None:
        place = _placement(ctx, event, location)
        metadata, stored = _fetch_while_downloading(ctx, api, account, event, location, place)
    else:
        metadata = api.fetch(ctx, account, event.sid)
        location = api.media(ctx, account, event, metadata)
        place = _placement(ctx, event, location)
        stored = _media(ctx, location, place) if location is not None else None
    media = archive_record.media_entry(place.media, stored, location.ext) if location and stored else None
    record = archive_record.build(metadata, event.to_payload(), media)
    write_json(place.metadata, record)
    return _bookkeep(ctx, event, place.metadata, record, "now")


def _bookkeep(ctx: WorkerContext, event: RecordingEvent, record_path: Path, record: dict[str, Any], how: str) -> dict[str, Any]:
    media = record.get("media") or None
    metadata = record.get("recording") or {}
    media_path = str(record_path.parent / media["file"]) if media else None
    ctx.catalog.update(
        event.source.value, event.sid,
        archived_at=time.time(), media_path=media_path, metadata_path=str(record_path),
        media_bytes=media["bytes"] if media else None, media_sha256=media.get("sha256") if media else None,
        duration=metadata.get("duration"), date_created=metadata.get("date_created"),
    )
    return {"archived": how, "media": media_path, "bytes": media["bytes"] if media else 0}


def _placement(ctx: WorkerContext, event: RecordingEvent, location: MediaLocation | None) -> Placement:
    ext = location.ext if location else "none"
    return Placement.of(ctx.settings.storage_path, event.source.value, event.account_sid, event.sid, ext)


def _media(ctx: WorkerContext, location: MediaLocation, place: Placement) -> Stored:
    """A download an earlier attempt completed (its job then failed on metadata, or died before
    the record) is kept, never fetched again: it was linked into place only once whole."""
    if place.media.exists():
        return digest(place.media)
    return download(ctx.egress, location.url, place.media, auth=location.auth, expected=location.expected_bytes)


def _fetch_while_downloading(
    ctx: WorkerContext, api: SourceApi, account: Account, event: RecordingEvent, location: MediaLocation, place: Placement
) -> tuple[dict[str, Any], Stored]:
    """Both Twilio calls at once: with Twilio's latency on each, one after the other was most
    of a recording's callback-to-archived time. A metadata failure wins (it is the one a
    serial run would have met first); a download that completed meanwhile is kept for the retry."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="media") as pool:
        downloading = pool.submit(_media, ctx, location, place)
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
