"""RQ job entry points, named by string from the receiver: `workers.jobs.process_recording`."""

from __future__ import annotations

import time
from typing import Any

import structlog
from rq import get_current_job
from rq.job import Job

from receiver.kernel import logs
from receiver.kernel.events import RecordingEvent, Status
from workers.failures import Failure, JobFailed, classify
from workers.jobs import announce, context, reactions, retry_policy
from workers.jobs.context import WorkerContext

log = logs.get("workers.jobs.entry")

_REACTIONS = {
    Status.COMPLETED: reactions.completed,
    Status.ABSENT: reactions.absent,
    Status.FAILED: reactions.failed,
}
# Reactions that call Twilio, and so must respect the account's shared throttle.
_CALLS_TWILIO = {Status.COMPLETED}
# The event each final state announces once its reaction succeeded.
_EVENTS = {Status.COMPLETED: "recording.archived", Status.ABSENT: "recording.absent", Status.FAILED: "recording.failed"}
# A job outcome per way a recording came to be archived ("recovered": the commit record was
# written by a run that died before the catalog heard of it).
_OUTCOMES = {"now": "done", "recovered": "recovered", "already": "already archived"}


def process_recording(payload: dict[str, Any]) -> dict[str, Any]:
    ctx = context.current()
    event = RecordingEvent.from_payload(payload)
    job = get_current_job()
    structlog.contextvars.bind_contextvars(sid=event.sid, source=event.source.value, job_id=job.id if job else None)
    try:
        return _process(ctx, event, job)
    finally:
        structlog.contextvars.clear_contextvars()


def _process(ctx: WorkerContext, event: RecordingEvent, job: Job | None) -> dict[str, Any]:
    started = time.monotonic()
    moved, previous = ctx.catalog.advance(event)
    if not moved:
        _done(ctx, event, job, started, "superseded", current=previous)
        log.info("event superseded", status=event.status.value, current=previous)
        return {"superseded_by": previous}
    reaction = _REACTIONS.get(event.status)
    if reaction is None:
        _done(ctx, event, job, started, "recorded")
        return {"recorded": event.status.value}
    try:
        if event.status in _CALLS_TWILIO:
            ctx.throttle.respect(event.account_sid)
        result = reaction(ctx, event)
    except Exception as exc:
        failure = classify(exc, _headers(ctx, event))
        if failure is None:
            raise
        return _handle_failure(ctx, event, job, failure, exc, started)
    archived_now = result.get("archived") in ("now", "recovered")
    # Every success announces, "already archived" too: a run that died after the archive and
    # before its event finds it archived, and the event's id keeps it from going out twice.
    announce.announce(ctx, _EVENTS[event.status], event.source.value, event.sid)
    _done(ctx, event, job, started, _OUTCOMES.get(str(result.get("archived")), "done"))
    if archived_now:
        ctx.stats.archived(event.source.value, event.sid, time.time())
    log.info("recording processed", status=event.status.value, **{k: v for k, v in result.items() if k != "media"})
    return result


def _done(ctx: WorkerContext, event: RecordingEvent, job: Job | None, started: float, outcome: str, **extra: Any) -> None:
    seconds = round(time.monotonic() - started, 3)
    ctx.catalog.note(
        event.source.value, event.sid, kind="job", status=event.status.value, outcome=outcome, seconds=seconds,
        job_id=job.id if job else None, **extra,
    )
    ctx.stats.job(event.source.value, outcome, seconds)


def _headers(ctx: WorkerContext, event: RecordingEvent) -> dict[str, str]:
    account = ctx.accounts.get(event.account_sid)
    return ctx.rest.last_headers(ctx.rest.client(account)) if account else {}


def _handle_failure(
    ctx: WorkerContext, event: RecordingEvent, job: Job | None, failure: Failure, exc: Exception, started: float
) -> dict[str, Any]:
    """Transient: let RQ retry later. Not found: a few times, then record it. Else: stop now."""
    settings = ctx.settings
    attempt = retry_policy.attempts_so_far(job, settings.retry_max) if job else 0
    if failure.kind == "deferred":
        return _defer(ctx, event, job, failure, exc, started)
    if failure.kind == "not_found" and attempt >= settings.not_found_retries:
        ctx.catalog.update(event.source.value, event.sid, error_meaning=f"not found at Twilio: {failure.reason}", not_found="1")
        _done(ctx, event, job, started, "not_found", error=failure.reason)
        log.warning("recording not found at Twilio", attempts=attempt + 1)
        return {"not_found": failure.reason}
    delay = retry_policy.backoff(attempt, settings.retry_base_seconds, failure.retry_after)
    if failure.status == 429:
        # Twilio's Retry-After holds the whole account; our jittered backoff is this job's own.
        ctx.throttle.hold(event.account_sid, failure.retry_after if failure.retry_after is not None else delay)
    if job is not None:
        if failure.kind == "permanent":
            retry_policy.stop_retrying(job)
        else:
            retry_policy.retry_later(job, delay)
    _done(ctx, event, job, started, f"failed ({failure.kind})", error=failure.reason, attempt=attempt + 1)
    log.warning("job failed", kind=failure.kind, error=type(exc).__name__, reason=failure.reason, attempt=attempt + 1,
                will_retry=failure.kind != "permanent" and job is not None and bool(job.retries_left))
    # The classified reason becomes the job's last line, where the console and `rq info` show it.
    raise JobFailed(f"{failure.kind}: {failure.reason}") from exc


def _defer(
    ctx: WorkerContext, event: RecordingEvent, job: Job | None, failure: Failure, exc: Exception, started: float
) -> dict[str, Any]:
    """Run again once our own hold lapses, without spending a retry or growing the backoff."""
    if job is not None:
        retry_policy.retry_free(job, retry_policy.wait_for(failure.retry_after or 1.0))
    _done(ctx, event, job, started, "deferred", error=failure.reason)
    log.info("job deferred", reason=failure.reason)
    raise JobFailed(f"deferred: {failure.reason}") from exc
