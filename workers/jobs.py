"""RQ job entry points, named by string from the receiver: `workers.jobs.process_recording`."""

from __future__ import annotations

import time
from typing import Any

from rq import get_current_job
from rq.job import Job

from receiver import logs
from receiver.events import RecordingEvent, Status
from workers import context, reactions, retry_policy
from workers.failures import Failure, JobFailed, classify

log = logs.get("workers.jobs")

_REACTIONS = {
    Status.COMPLETED: reactions.completed,
    Status.ABSENT: reactions.absent,
    Status.FAILED: reactions.failed,
}


def process_recording(payload: dict[str, Any]) -> dict[str, Any]:
    ctx = context.current()
    event = RecordingEvent.from_payload(payload)
    job = get_current_job()
    started = time.monotonic()
    moved, previous = ctx.catalog.advance(event)
    if not moved:
        ctx.catalog.note(event.source.value, event.sid, kind="job", status=event.status.value, outcome="superseded", current=previous)
        log.info("event superseded", sid=event.sid, status=event.status.value, current=previous)
        return {"superseded_by": previous}
    reaction = _REACTIONS.get(event.status)
    if reaction is None:
        ctx.catalog.note(event.source.value, event.sid, kind="job", status=event.status.value, outcome="recorded")
        return {"recorded": event.status.value}
    try:
        result = reaction(ctx, event)
    except Exception as exc:
        failure = classify(exc, _headers(ctx, event))
        if failure is None:
            raise
        return _handle_failure(ctx, event, job, failure, exc, started)
    elapsed = round(time.monotonic() - started, 3)
    ctx.catalog.note(event.source.value, event.sid, kind="job", status=event.status.value, outcome="done", seconds=elapsed, job_id=job.id if job else None)
    log.info("recording processed", sid=event.sid, status=event.status.value, seconds=elapsed, **{k: v for k, v in result.items() if k != "media"})
    return result


def _headers(ctx: context.WorkerContext, event: RecordingEvent) -> dict[str, str]:
    account = ctx.accounts.get(event.account_sid)
    return ctx.rest.last_headers(ctx.rest.client(account)) if account else {}


def _handle_failure(
    ctx: context.WorkerContext, event: RecordingEvent, job: Job | None, failure: Failure, exc: Exception, started: float
) -> dict[str, Any]:
    """Transient: let RQ retry later. Not found: a few times, then record it. Else: stop now."""
    settings = ctx.settings
    attempt = retry_policy.attempts_so_far(job, settings.retry_max) if job else 0
    note = {"kind": "job", "status": event.status.value, "error": failure.reason, "seconds": round(time.monotonic() - started, 3)}
    if failure.kind == "not_found" and attempt >= settings.not_found_retries:
        ctx.catalog.update(event.source.value, event.sid, error_meaning=f"not found at Twilio: {failure.reason}", not_found="1")
        ctx.catalog.note(event.source.value, event.sid, outcome="not_found", **note)
        log.warning("recording not found at Twilio", sid=event.sid, attempts=attempt + 1)
        return {"not_found": failure.reason}
    if job is not None:
        if failure.kind == "permanent":
            retry_policy.stop_retrying(job)
        else:
            retry_policy.retry_later(job, retry_policy.backoff(attempt, settings.retry_base_seconds, failure.retry_after))
    ctx.catalog.note(event.source.value, event.sid, outcome=f"failed ({failure.kind})", attempt=attempt + 1, **note)
    log.warning("job failed", sid=event.sid, kind=failure.kind, reason=failure.reason, attempt=attempt + 1)
    # The classified reason becomes the job's last line, where the console and `rq info` show it.
    raise JobFailed(f"{failure.kind}: {failure.reason}") from exc
