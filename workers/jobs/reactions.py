"""What happens for each final state: archive a completed recording, record absent and failed."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any

from receiver.kernel.events import ERROR_MEANINGS, RecordingEvent
from workers.failures import PermanentError, TransientError
from workers.jobs import decryption, deletion_schedule
from workers.jobs.context import WorkerContext
from workers.storage import record as archive_record
from workers.storage.seam import AlreadyStored, Keys, Stored, name_of
from workers.twilio_rest import media_stream, sources
from workers.twilio_rest.sources import MediaLocation, SourceApi

if TYPE_CHECKING:
    from receiver.kernel.accounts import Account


def completed(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    """Archive it, then schedule its deletion at Twilio when the policy says so (every run that
    finds it archived asks: one job id per recording, so only the first ask schedules one)."""
    result = _archived(ctx, event)
    # A recording without media has nothing verified to stand in for it: never scheduled.
    if result.get("media") and not ctx.catalog.get(event.source.value, event.sid).get("deleted_at_twilio"):
        deletion = deletion_schedule.schedule(ctx.settings, ctx.redis, event.source.value, event.account_sid, event.sid)
        if deletion is not None:
            result["deletion_job"] = deletion
    return result


def _archived(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    """Fetch metadata, stream the media, write the commit record beside it. Safe to run again,
    even twice at once: the claim lets one run archive, and the other then finds it archived."""
    state = ctx.catalog.get(event.source.value, event.sid)
    if state.get("archived_at"):
        return {"archived": "already", "media": state.get("media_path")}
    with ctx.claims.hold(event.source.value, event.sid):
        if ctx.catalog.get(event.source.value, event.sid).get("archived_at"):
            return {"archived": "already", "media": state.get("media_path")}
        keys = _keys(event, None)
        # Under the claim no other run writes this recording: any temp file of it is a dead
        # run's, even one whose record made it into place just before it died.
        ctx.store.forget_partials(keys.record)
        record = archive_record.read(ctx.store, keys.record)
        if record is not None:
            # A run that died after its commit record: archived already, only the catalog lags.
            return _recovered(ctx, event, keys, record)
        return _archive(ctx, event)


def _archive(ctx: WorkerContext, event: RecordingEvent) -> dict[str, Any]:
    account = ctx.account(event.account_sid)
    api = sources.api_for(event.source)
    location = api.media_from_sids(ctx, account, event)
    stored: Stored | None
    if location is not None:
        keys = _keys(event, location)
        metadata, stored = _fetch_while_downloading(ctx, api, account, event, location, keys)
    else:
        metadata = api.fetch(ctx, account, event.sid)
        location = api.media(ctx, account, event, metadata)
        keys = _keys(event, location)
        stored = _media(ctx, location, keys, decryption.known(metadata)) if location is not None else None
    media = archive_record.media_entry(keys.media, stored, location.ext) if location and stored else None
    encryption = decryption.record_entry(ctx.settings, metadata)
    if media is not None and encryption is not None:
        media["encryption"] = encryption
    record = archive_record.build(metadata, event.to_payload(), media)
    try:
        ctx.store.put_record(keys.record, archive_record.encode(record))
    except AlreadyStored:
        # Another run's record won the create-only write: theirs is the archive, once it checks out.
        theirs = archive_record.read(ctx.store, keys.record)
        if theirs is None:
            raise
        return _recovered(ctx, event, keys, theirs)
    return _bookkeep(ctx, event, keys, record, "now")


def _recovered(ctx: WorkerContext, event: RecordingEvent, keys: Keys, record: dict[str, Any]) -> dict[str, Any]:
    archive_record.verify(record, ctx.store, keys.folder)
    return _bookkeep(ctx, event, keys, record, "recovered")


def _bookkeep(ctx: WorkerContext, event: RecordingEvent, keys: Keys, record: dict[str, Any], how: str) -> dict[str, Any]:
    media = record.get("media") or None
    metadata = record.get("recording") or {}
    media_path = ctx.store.where(f"{keys.folder}/{media['file']}") if media else None
    ctx.catalog.update(
        event.source.value, event.sid,
        archived_at=time.time(), media_path=media_path, metadata_path=ctx.store.where(keys.record),
        media_bytes=media["bytes"] if media else None, media_sha256=media.get("sha256") if media else None,
        duration=metadata.get("duration"), date_created=metadata.get("date_created"),
    )
    return {"archived": how, "media": media_path, "bytes": media["bytes"] if media else 0}


def _keys(event: RecordingEvent, location: MediaLocation | None) -> Keys:
    ext = location.ext if location else "none"
    return Keys.of(event.source.value, event.account_sid, event.sid, ext)


def _media(ctx: WorkerContext, location: MediaLocation, keys: Keys, metadata: Future[dict[str, Any]]) -> Stored:
    """A download an earlier attempt completed (its job then failed on metadata, or died before
    the record) is kept, never fetched again: it was put in place only once whole. Encrypted
    media is decrypted on its way in (`metadata` says whether it is)."""
    kept = ctx.store.digest(keys.media) if ctx.store.exists(keys.media) else None
    if kept is not None:
        return kept
    downloaded = media_stream.chunks(ctx.egress, location.url, auth=location.auth, expected=location.expected_bytes)
    chunks = decryption.stage(ctx.settings, downloaded, metadata) if location.may_be_encrypted else downloaded
    try:
        with contextlib.closing(chunks):
            return ctx.store.put_media(keys.media, chunks)
    except AlreadyStored as race:
        # Another run won the create-only write: theirs stays (never replaced) if it is the same media.
        theirs = ctx.store.digest(keys.media)
        if theirs is None or race.ours is None:
            raise
        if theirs != race.ours:
            raise PermanentError(f"{name_of(keys.media)} in storage differs from the media Twilio served") from None
        return theirs


def _fetch_while_downloading(
    ctx: WorkerContext, api: SourceApi, account: Account, event: RecordingEvent, location: MediaLocation, keys: Keys
) -> tuple[dict[str, Any], Stored]:
    """Both Twilio calls at once: with Twilio's latency on each, one after the other was most
    of a recording's callback-to-archived time. A metadata failure wins (it is the one a
    serial run would have met first). The download reads ahead while the metadata comes, then
    waits for it (the media may be encrypted), so a metadata failure abandons it too. Downloads
    run on the process's pool: a thread started per job cost a tenth of a busy worker's CPU."""
    fetched: Future[dict[str, Any]] = Future()
    downloading = ctx.downloads.submit(_media, ctx, location, keys, fetched)
    try:
        metadata = api.fetch(ctx, account, event.sid)
    except BaseException:
        fetched.set_exception(TransientError("the metadata fetch failed"))
        # Never a download left running past its job: the job's claim on the recording ends with it.
        wait([downloading])
        raise
    fetched.set_result(metadata)
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
