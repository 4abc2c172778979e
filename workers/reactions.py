"""What happens for each final state: archive a completed recording, record absent and failed."""

from __future__ import annotations

import time
from typing import Any

from receiver.events import ERROR_MEANINGS, RecordingEvent
from workers.archive import Placement, download, write_json
from workers.context import WorkerContext
from workers.sources import voice


def completed(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    """Fetch metadata, stream the media, write metadata beside it. Safe to run again."""
    state = ctx.catalog.get(event.source.value, event.sid)
    if state.get("archived_at"):
        return {"archived": "already", "media": state.get("media_path")}
    account = ctx.account(event.account_sid)
    client = ctx.rest.client(account)
    metadata = voice.fetch(client, event.account_sid, event.sid)
    fmt = ctx.settings.media_format
    place = Placement.of(ctx.settings.storage_path, event.source.value, event.account_sid, event.sid, fmt)
    url = voice.media_url(ctx.settings.twilio_api_base_url, event.account_sid, event.sid, fmt)
    size = download(ctx.http, url, place.media, auth=account.rest_credentials())
    record = {"recording": metadata, "event": event.to_payload(), "media": {"file": place.media.name, "bytes": size, "format": fmt}}
    write_json(place.metadata, record)
    ctx.catalog.update(
        event.source.value, event.sid,
        archived_at=time.time(), media_path=str(place.media), metadata_path=str(place.metadata), media_bytes=size,
        duration=metadata.get("duration"), date_created=metadata.get("date_created"),
    )
    return {"archived": "now", "media": str(place.media), "bytes": size}


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
