"""The deletion job (`workers.jobs.delete_recording`): delete a recording at Twilio, only after its
stored copy re-verifies, never while it is held, and never twice.

Order of a run: our own mark says deleted already → done, no DELETE. Held → run again later.
The account throttled → run again later. The stored copy (size and sha256 against the commit
record) fails → never deleted, the job fails permanently and loudly. A voice recording Twilio is
still transcribing → run again later (up to DELETE_TRANSCRIPTION_WAIT). Then the mark's
`requested_at`, the source's DELETE, and the mark's `deleted_at`: a 404 after an earlier request
of ours is that request having gone through."""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
from rq import get_current_job
from rq.job import Job
from twilio.base.exceptions import TwilioRestException

from receiver.kernel import keys, logs
from receiver.kernel.events import Source
from workers.failures import Deferred, Failure, JobFailed, PermanentError, classify
from workers.jobs import announce, context, deletion_schedule, retry_policy
from workers.jobs.context import WorkerContext
from workers.storage import record as archive_record
from workers.storage.seam import Keys
from workers.twilio_rest import sources
from workers.twilio_rest.sources import voice

log = logs.get("workers.jobs.deletion")

# A held recording's job looks again this often; releasing a hold takes effect at its next look.
HOLD_RECHECK_SECONDS = 900
# A recording Twilio is transcribing is looked at again this often (within DELETE_TRANSCRIPTION_WAIT).
TRANSCRIPTION_RECHECK_SECONDS = 300
# What each outcome says in the recording's timeline.
SAID = {
    "deleted": "deleted at Twilio",
    "already": "deleted at Twilio already (by an earlier run)",
    "gone": "not at Twilio any more (404): nothing to delete",
    "nothing_to_delete": "nothing to delete at Twilio",
    "held": "not deleted at Twilio: held",
    "transcribing": "not deleted at Twilio yet: a transcription is still in progress",
    "refused": "not deleted at Twilio: the stored copy failed verification",
}


class CopyNotVerified(PermanentError):
    """The stored copy does not match its commit record (or either is missing): never delete."""


class Held(Deferred):
    """A legal hold on the recording or its parent: look again later, never drop the job."""


class Transcribing(Deferred):
    """Twilio is still transcribing it: deleting now would cut the transcription off (warning 13618)."""


def delete_recording(payload: dict[str, Any]) -> dict[str, Any]:
    ctx = context.current()
    source, sid, account_sid = Source(str(payload["source"])), str(payload["sid"]), str(payload["account_sid"])
    job = get_current_job()
    structlog.contextvars.bind_contextvars(sid=sid, source=source.value, job_id=job.id if job else None)
    try:
        return _run(ctx, source, account_sid, sid, job)
    finally:
        structlog.contextvars.clear_contextvars()


def _run(ctx: WorkerContext, source: Source, account_sid: str, sid: str, job: Job | None) -> dict[str, Any]:
    mark = _mark(ctx, source.value, sid)
    if mark.get("deleted_at"):
        log.info("deletion at Twilio done already", outcome=mark.get("outcome"))
        return {"deleted": "already"}
    try:
        hold = deletion_schedule.hold_on(ctx.redis, sid, ctx.catalog.get(source.value, sid))
        if hold is not None:
            raise Held(f"held by {hold.by} on {hold.sid}: {hold.reason}", wait=HOLD_RECHECK_SECONDS)
        ctx.throttle.respect(account_sid)
        stored = verify_copy(ctx, source.value, account_sid, sid)
        if source is Source.VOICE:
            _wait_for_transcriptions(ctx, account_sid, sid, mark)
        outcome = _delete(ctx, source, account_sid, sid, earlier=bool(mark.get("requested_at")))
    except Exception as exc:
        failure = classify(exc, _headers(ctx, account_sid))
        if failure is None:
            raise
        return _failed(ctx, source.value, account_sid, sid, job, failure, exc)
    _settled(ctx, source.value, sid, outcome, stored)
    return {"deleted": outcome}


def verify_copy(ctx: WorkerContext, source: str, account_sid: str, sid: str) -> dict[str, Any]:
    """The commit record's media entry, once the stored media matches it by size and sha256."""
    keys_ = Keys.of(source, account_sid, sid, "none")
    try:
        record = archive_record.read(ctx.store, keys_.record)
    except PermanentError as exc:
        raise CopyNotVerified(str(exc)) from None
    if record is None:
        raise CopyNotVerified(f"no archive record {sid}.json in storage")
    media = record.get("media")
    if not isinstance(media, dict) or not media.get("file"):
        raise CopyNotVerified(f"archive record {sid}.json names no media")
    if not media.get("sha256"):
        raise CopyNotVerified(f"archive record {sid}.json has no sha256 to check the media against")
    try:
        archive_record.verify(record, ctx.store, keys_.folder)
    except PermanentError as exc:
        raise CopyNotVerified(str(exc)) from None
    return media


def _wait_for_transcriptions(ctx: WorkerContext, account_sid: str, sid: str, mark: dict[str, str]) -> None:
    """Defer while Twilio still transcribes it, for up to DELETE_TRANSCRIPTION_WAIT from the first
    time a run found a transcription in progress; past that, delete all the same (said in the log)."""
    wait = ctx.settings.delete_transcription_wait_seconds
    if wait <= 0:
        return
    try:
        busy = voice.transcriptions_in_progress(ctx, ctx.account(account_sid), sid)
    except TwilioRestException as exc:
        if exc.status == 404:
            return  # not at Twilio any more: the DELETE will say so
        raise
    if not busy:
        return
    now = time.time()
    key = keys.deletion_key(Source.VOICE.value, sid)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hsetnx(key, "transcribing_since", now)
    pipe.expire(key, keys.DELETION_MARK_TTL_SECONDS)
    pipe.hget(key, "transcribing_since")
    since = float(pipe.execute()[-1] or now)
    remaining = since + wait - now
    if remaining > 0:
        raise Transcribing(f"{busy} transcription(s) still in progress at Twilio", wait=min(remaining, TRANSCRIPTION_RECHECK_SECONDS))
    log.warning("transcription still in progress after DELETE_TRANSCRIPTION_WAIT: deleting all the same", transcriptions=busy)


def _delete(ctx: WorkerContext, source: Source, account_sid: str, sid: str, earlier: bool) -> str:
    account = ctx.account(account_sid)
    key = keys.deletion_key(source.value, sid)
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hsetnx(key, "requested_at", time.time())
    pipe.expire(key, keys.DELETION_MARK_TTL_SECONDS)
    pipe.execute()
    try:
        sources.api_for(source).delete(ctx, account, sid)
    except TwilioRestException as exc:
        if source is Source.MEDIA and exc.status in (404, 410):
            return "nothing_to_delete"
        if exc.status == 404:
            # Our earlier request went through and its answer was lost; or someone else deleted it.
            return "deleted" if earlier else "gone"
        raise
    return "deleted"


def _settled(ctx: WorkerContext, source: str, sid: str, outcome: str, media: dict[str, Any]) -> None:
    now = time.time()
    pipe = ctx.redis.pipeline(transaction=True)
    pipe.hset(keys.deletion_key(source, sid), mapping={"deleted_at": now, "outcome": outcome})
    pipe.expire(keys.deletion_key(source, sid), keys.DELETION_MARK_TTL_SECONDS)
    pipe.execute()
    fields: dict[str, Any] = {"deletion": outcome}
    if outcome == "deleted":
        fields["deleted_at_twilio"] = now
    ctx.catalog.update(source, sid, **fields)
    ctx.catalog.note(source, sid, kind="deletion", outcome=outcome, said=SAID[outcome], verified_sha256=media.get("sha256"))
    ctx.stats.deletion(source, outcome)
    if outcome == "deleted":
        announce.announce(ctx, "recording.deleted", source, sid)
    log.info("deletion at Twilio settled", outcome=outcome)


def _failed(
    ctx: WorkerContext, source: str, account_sid: str, sid: str, job: Job | None, failure: Failure, exc: Exception
) -> dict[str, Any]:
    if isinstance(exc, Deferred):
        outcome = "held" if isinstance(exc, Held) else "transcribing" if isinstance(exc, Transcribing) else "deferred"
        if job is not None:
            retry_policy.retry_free(job, retry_policy.wait_for(exc.wait))
        # Once per spell: a hold lasting months re-checks thousands of times, and the timeline is
        # bounded, so repeating the same entry would push the recording's history out of it.
        if not _last_note_says(ctx, source, sid, outcome):
            ctx.catalog.note(source, sid, kind="deletion", outcome=outcome, said=SAID.get(outcome, "deletion deferred"),
                             reason=failure.reason)
            ctx.stats.deletion(source, outcome)
        log.info("job deferred", job="deletion", outcome=outcome, reason=failure.reason)
        raise JobFailed(f"deferred: {failure.reason}") from exc
    permanent = failure.kind in ("permanent", "not_found")
    outcome = "refused" if isinstance(exc, CopyNotVerified) else f"failed ({'permanent' if permanent else failure.kind})"
    attempt = retry_policy.attempts_so_far(job, ctx.settings.retry_max) if job else 0
    delay = retry_policy.backoff(attempt, ctx.settings.retry_base_seconds, failure.retry_after)
    if failure.status == 429:
        ctx.throttle.hold(account_sid, failure.retry_after if failure.retry_after is not None else delay)
    if job is not None:
        if permanent:
            retry_policy.stop_retrying(job)
        else:
            retry_policy.retry_later(job, delay)
    ctx.catalog.note(source, sid, kind="deletion", outcome=outcome, said=SAID.get(outcome, "deletion at Twilio failed"),
                     error=failure.reason, attempt=attempt + 1)
    ctx.stats.deletion(source, "refused" if outcome == "refused" else "failed")
    if outcome == "refused":
        # Loud: a copy that no longer matches its record is damage to look at, whatever Twilio holds.
        log.error("stored copy failed verification: not deleted at Twilio", reason=failure.reason)
    else:
        log.warning("job failed", job="deletion", kind=failure.kind, error=type(exc).__name__, reason=failure.reason, attempt=attempt + 1,
                    will_retry=not permanent and job is not None and bool(job.retries_left))
    raise JobFailed(f"{failure.kind}: {failure.reason}") from exc


def _last_note_says(ctx: WorkerContext, source: str, sid: str, outcome: str) -> bool:
    last = ctx.redis.lindex(keys.timeline_key(source, sid), -1)
    try:
        entry = json.loads(last) if last else {}
    except ValueError:
        return False
    return isinstance(entry, dict) and entry.get("kind") == "deletion" and entry.get("outcome") == outcome


def _mark(ctx: WorkerContext, source: str, sid: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = ctx.redis.hgetall(keys.deletion_key(source, sid))  # type: ignore[assignment]
    return {k.decode(): v.decode() for k, v in raw.items()}


def _headers(ctx: WorkerContext, account_sid: str) -> dict[str, str]:
    account = ctx.accounts.get(account_sid)
    return ctx.rest.last_headers(ctx.rest.client(account)) if account else {}
